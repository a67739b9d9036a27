"""Atomic pushes, monotonic versions, retention and models.config."""

import os
import threading
import time

import pytest
import tensorflow as tf

from ganpipe.components import versioning
from ganpipe.components.serving_pusher import publishing
from ganpipe.serving import config as serving_config
from ganpipe.serving import manager


def _fake_model(path, marker='a'):
  os.makedirs(os.path.join(path, 'variables'))
  with open(os.path.join(path, 'variables', 'variables.index'), 'w') as f:
    f.write(marker)
  with open(os.path.join(path, 'saved_model.pb'), 'w') as f:
    f.write(marker)
  return str(path)


def test_push_writes_a_complete_version_and_leaves_no_temporary(tmp_path):
  model = _fake_model(tmp_path / 'model')
  path = publishing.push_version(model, str(tmp_path / 'serving' / 'm'), version=5)
  assert path == str(tmp_path / 'serving' / 'm' / '5')
  assert sorted(os.listdir(path)) == ['saved_model.pb', 'variables']
  assert os.listdir(tmp_path / 'serving' / 'm') == ['5']


def test_versions_increase_even_within_one_second_and_after_clock_skew(tmp_path):
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  first = int(os.path.basename(publishing.push_version(model, base)))
  second = int(os.path.basename(publishing.push_version(model, base)))
  assert second == first + 1 or second > first
  assert publishing.next_version(base, now=1000) == second + 1  # a clock far in the past


def test_a_crash_during_the_copy_leaves_no_visible_version(tmp_path, monkeypatch):
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  real_copy = tf.io.gfile.copy

  def crash_on_saved_model(source, destination, overwrite=False):
    if source.endswith('saved_model.pb'):
      raise OSError('disk full')
    return real_copy(source, destination, overwrite)

  monkeypatch.setattr(tf.io.gfile, 'copy', crash_on_saved_model)
  with pytest.raises(OSError, match='disk full'):
    publishing.push_version(model, base, version=7)
  assert versioning.versions(base) == []
  assert os.listdir(base) == []


def test_a_killed_push_is_invisible_to_the_server_and_cleaned_by_the_next_push(tmp_path):
  base = tmp_path / 'm'
  # What a push killed mid-copy leaves: a hidden folder without saved_model.pb.
  stale = base / '.incoming-9-deadbeef'
  os.makedirs(stale / 'variables')
  assert manager._versions_on_disk(str(base)) == {}  # pylint: disable=protected-access
  publishing.push_version(_fake_model(tmp_path / 'model'), str(base), version=10)
  assert sorted(os.listdir(base)) == ['10']


def test_a_push_running_concurrently_keeps_its_temporary_and_gets_its_own_version(
    tmp_path, monkeypatch):
  # Two pipeline runs push the same model at once. The second starts while the first is still
  # copying, and finishes first. Before, it deleted the first's temporary folder as stale.
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  copying, release = threading.Event(), threading.Event()
  real_copy_tree = publishing._copy_tree  # pylint: disable=protected-access

  def slow_first_copy(source, destination):
    real_copy_tree(source, destination)
    if not copying.is_set():
      copying.set()
      assert release.wait(30)

  monkeypatch.setattr(publishing, '_copy_tree', slow_first_copy)
  monkeypatch.setattr(publishing, 'next_version', lambda base_path: max(
      [100] + [v + 1 for v in versioning.versions(base_path)]))  # both runs pick 100 at first
  first = []
  thread = threading.Thread(target=lambda: first.append(publishing.push_version(model, base)))
  thread.start()
  assert copying.wait(30)
  second = publishing.push_version(model, base)
  release.set()
  thread.join(30)
  assert second == os.path.join(base, '100')
  assert first == [os.path.join(base, '101')]  # 100 was taken while it copied: the next one
  assert sorted(os.listdir(base)) == ['100', '101']
  assert sorted(os.listdir(os.path.join(base, '101'))) == ['saved_model.pb', 'variables']


def test_a_temporary_older_than_any_copy_is_removed(tmp_path):
  base = tmp_path / 'm'
  old = versioning.temporary_name('.incoming-', 9,
                                 now=time.time() - versioning.STALE_AFTER_SECONDS - 60)
  young = versioning.temporary_name('.incoming-', 9)
  os.makedirs(base / old / 'variables')
  os.makedirs(base / young / 'variables')
  assert versioning.remove_stale_temporaries(str(base), '.incoming-') == [str(base / old)]
  assert os.listdir(base) == [young]


def test_retention_keeps_exactly_the_newest(tmp_path):
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  for version in (3, 1, 4, 2):
    publishing.push_version(model, base, version=version)
  assert publishing.retain_latest(base, keep=2) == [1, 2]
  assert versioning.versions(base) == [3, 4]
  with pytest.raises(ValueError, match='at least 1'):
    publishing.retain_latest(base, keep=0)


def test_existing_version_is_never_overwritten(tmp_path):
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  publishing.push_version(model, base, version=1)
  with pytest.raises(FileExistsError, match='version 1 already exists'):
    publishing.push_version(model, base, version=1)


def test_models_config_serves_every_pushed_model(tmp_path):
  root = tmp_path / 'serving'
  model = _fake_model(tmp_path / 'model')
  publishing.push_version(model, str(root / 'classifier'), version=1)
  publishing.push_version(model, str(root / 'generator'), version=2)
  os.makedirs(root / 'empty')
  path = publishing.write_models_config(str(root))
  config = serving_config.read_model_server_config(path)
  models = {m.name: m.base_path for m in config.model_config_list.config}
  assert models == {'classifier': str(root / 'classifier'), 'generator': str(root / 'generator')}
  mounted = serving_config.read_model_server_config(
      publishing.write_models_config(str(root), '/models'))
  assert [m.base_path for m in mounted.model_config_list.config] == ['/models/classifier',
                                                                    '/models/generator']
  assert not [n for n in os.listdir(root) if n.endswith('.tmp')]


def test_two_writers_at_once_both_keep_their_change(tmp_path):
  # Each edit labels its own model. Without rollout.config_lock, the second writer reads the
  # file while the first is still editing, and the first's rename then drops the second's label.
  root = tmp_path / 'serving'
  model = _fake_model(tmp_path / 'model')
  for name in ('classifier', 'generator'):
    publishing.push_version(model, str(root / name), version=1)
  publishing.write_models_config(str(root))
  first_is_editing = threading.Event()

  def label(name, pause):
    def edit(config):
      first_is_editing.set()
      time.sleep(pause)
      entry = next(m for m in config.model_config_list.config if m.name == name)
      entry.version_labels['stable'] = 1
    return edit

  first = threading.Thread(target=publishing.write_models_config,
                           args=(str(root), None, label('classifier', 0.5)))
  first.start()
  first_is_editing.wait(5)
  publishing.write_models_config(str(root), None, label('generator', 0))
  first.join()
  config = serving_config.read_model_server_config(os.path.join(root, 'models.config'))
  assert {m.name: dict(m.version_labels) for m in config.model_config_list.config} == {
      'classifier': {'stable': 1}, 'generator': {'stable': 1}}
  assert publishing.models_with_versions(str(root)) == {'classifier': [1], 'generator': [1]}
