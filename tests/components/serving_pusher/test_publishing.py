"""Atomic pushes, monotonic versions, retention and models.config."""

import os

import pytest
import tensorflow as tf

from components.serving_pusher import publishing
from serving import config as serving_config
from serving import manager


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
  assert publishing.versions(base) == []
  assert os.listdir(base) == []


def test_a_killed_push_is_invisible_to_the_server_and_cleaned_by_the_next_push(tmp_path):
  base = tmp_path / 'm'
  # What a push killed mid-copy leaves: a hidden folder without saved_model.pb.
  stale = base / '.incoming-9-deadbeef'
  os.makedirs(stale / 'variables')
  assert manager._versions_on_disk(str(base)) == {}  # pylint: disable=protected-access
  publishing.push_version(_fake_model(tmp_path / 'model'), str(base), version=10)
  assert sorted(os.listdir(base)) == ['10']


def test_retention_keeps_exactly_the_newest(tmp_path):
  base = str(tmp_path / 'm')
  model = _fake_model(tmp_path / 'model')
  for version in (3, 1, 4, 2):
    publishing.push_version(model, base, version=version)
  assert publishing.retain_latest(base, keep=2) == [1, 2]
  assert publishing.versions(base) == [3, 4]
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
