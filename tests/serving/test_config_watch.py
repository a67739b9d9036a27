"""`--model_config_file_poll_wait_seconds`: the model config file is re-read while serving."""

import logging
import time

import grpc
import numpy as np
import pytest

from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import config_watch
from ganpipe.serving import errors
from ganpipe.serving import serve_command
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models


def _config_text(models) -> str:
  """A ModelServerConfig text proto; `models` maps a name to (base path, {label: version})."""
  entries = []
  for name, (base_path, labels) in models.items():
    label_text = ''.join(f' version_labels {{ key: "{label}" value: {version} }}'
                         for label, version in labels.items())
    entries.append(f'config {{ name: "{name}" base_path: "{base_path}" model_platform: '
                   f'"tensorflow"{label_text} }}')
  return 'model_config_list { ' + ' '.join(entries) + ' }\n'


class _Recorder:
  """The watcher's `apply`: records configs, and refuses them while `refusal` is set."""

  def __init__(self):
    self.applied = []
    self.refusal = None

  def __call__(self, config) -> None:
    if self.refusal is not None:
      raise errors.ServingError(grpc.StatusCode.FAILED_PRECONDITION, self.refusal)
    self.applied.append(config)


@pytest.fixture(name='watched')
def _watched(tmp_path):
  path = tmp_path / 'models.config'
  path.write_text(_config_text({'a': ('/models/a', {})}))
  recorder = _Recorder()
  watcher = config_watch.ConfigFileWatcher(str(path), 60.0, recorder,
                                           config_lib.read_model_server_config(str(path)))
  return path, recorder, watcher


def test_an_unchanged_file_is_not_applied_again(watched):
  path, recorder, watcher = watched
  path.write_text('# the same config, written differently\n' +
                  _config_text({'a': ('/models/a', {})}).replace(' ', '\n'))
  assert watcher.poll() is False
  assert recorder.applied == []


def test_a_changed_file_is_applied_once(watched):
  path, recorder, watcher = watched
  path.write_text(_config_text({'a': ('/models/a', {}), 'b': ('/models/b', {})}))
  assert watcher.poll() is True
  assert watcher.poll() is False
  assert [[m.name for m in c.model_config_list.config] for c in recorder.applied] == [['a', 'b']]


def test_a_broken_file_keeps_the_running_config_logs_once_and_a_fix_applies(watched, caplog):
  path, recorder, watcher = watched
  path.write_text('model_config_list { config { name: "a" ')
  with caplog.at_level(logging.ERROR, logger='ganpipe.serving.config_watch'):
    assert watcher.poll() is False
    assert watcher.poll() is False
  assert recorder.applied == []
  errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
  assert len(errors_logged) == 1, errors_logged
  assert 'not applied; the running config stays' in errors_logged[0]
  assert 'is not a ModelServerConfig text proto' in errors_logged[0]
  path.write_text(_config_text({'b': ('/models/b', {})}))
  assert watcher.poll() is True
  assert [m.name for m in recorder.applied[0].model_config_list.config] == ['b']


def test_a_refused_config_is_retried_at_every_poll_until_it_applies(watched, caplog):
  path, recorder, watcher = watched
  recorder.refusal = 'version 2 of model a is not available'
  path.write_text(_config_text({'a': ('/models/a', {'live': 2})}))
  with caplog.at_level(logging.ERROR, logger='ganpipe.serving.config_watch'):
    assert watcher.poll() is False
    assert watcher.poll() is False
  assert 'version 2 of model a is not available' in caplog.text
  recorder.refusal = None  # The version the label waits for now serves.
  assert watcher.poll() is True
  assert recorder.applied[0].model_config_list.config[0].version_labels['live'] == 2


def test_the_flag_needs_a_config_file_and_a_non_negative_wait(tmp_path, capsys):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                               str(tmp_path / 'half_plus_two'), '--port', '0',
                               '--model_config_file_poll_wait_seconds', '5'])
  assert status == 2
  assert '--model_config_file_poll_wait_seconds polls --model_config_file' in (
      capsys.readouterr().err)
  with pytest.raises(config_lib.ConfigError, match='must not be negative'):
    config_lib.ServerOptions(model_config=config_lib.single_model_config('m', str(tmp_path)),
                             model_config_file=str(tmp_path / 'models.config'),
                             model_config_file_poll_wait_seconds=-1)


def _wait_for(condition, timeout_s: float, describe):
  deadline = time.monotonic() + timeout_s
  while not condition():
    if time.monotonic() > deadline:
      raise AssertionError(f'timed out after {timeout_s} s: {describe()}')
    time.sleep(0.1)


def test_the_server_applies_edits_to_its_config_file_and_survives_a_broken_one(tmp_path):
  root = tmp_path / 'models'
  fixture_models.build_half_plus_two(str(root / 'first' / '1'), 1)
  fixture_models.build_half_plus_two(str(root / 'second' / '2'), 2)
  path = tmp_path / 'models.config'
  path.write_text(_config_text({'first': (root / 'first', {})}))
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.read_model_server_config(str(path)),
      model_config_file=str(path), model_config_file_poll_wait_seconds=0.2, port=0,
      file_system_poll_wait_seconds=0)).start()
  x = {'x': np.array([[4.0]], np.float32)}
  try:
    with client_lib.ServingClient(f'127.0.0.1:{server.port}', retries=0) as client:
      with pytest.raises(client_lib.ServingError, match='NOT_FOUND'):
        client.model_status('second')

      path.write_text(_config_text({'first': (root / 'first', {}),
                                    'second': (root / 'second', {})}))

      def second_serves():
        try:
          return [s['state'] for s in client.model_status('second')] == ['AVAILABLE']
        except client_lib.ServingError:
          return False
      _wait_for(second_serves, 60, lambda: path.read_text())
      assert client.predict('second', x)['y'].tolist() == [[fixture_models.half_plus_two_y(2, 4.0)]]

      path.write_text('model_config_list { config { name: "first" ')  # Half written.
      time.sleep(1.0)  # Five polls.
      assert client.predict('first', x)['y'].tolist() == [[fixture_models.half_plus_two_y(1, 4.0)]]
      assert client.predict('second', x)['y'].tolist() == [
          [fixture_models.half_plus_two_y(2, 4.0)]]

      path.write_text(_config_text({'second': (root / 'second', {})}))

      # A model the config drops stays listed, its versions END, as TF Serving's manager keeps
      # the states of unloaded servables (core/servable_state_monitor.cc); it serves no more.
      def first_removed():
        return [s['state'] for s in client.model_status('first')] == ['END']
      _wait_for(first_removed, 60, lambda: path.read_text())
      with pytest.raises(client_lib.ServingError, match='NOT_FOUND'):
        client.predict('first', x)
  finally:
    server.stop(grace=1)
