"""`ganpipe rollout`: its steps on a serving root, against a server, and its one-line errors."""

import json

import numpy as np
import pytest

from ganpipe.app import cli
from ganpipe.components.serving_pusher import rollout
from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models


def _serving_root(tmp_path, labels):
  """m/1 (stable) and m/2 (the canary) under a serving root, as a canary push leaves them."""
  root = tmp_path / 'serving'
  for version in (1, 2):
    fixture_models.build_half_plus_two(str(root / 'm' / str(version)), version)
  config = fixture_models.server_config([fixture_models.model_config(
      'm', str(root / 'm'), policy='specific', versions=[1, 2], labels=labels)])
  rollout.write_config(str(root), config)
  return str(root), config


@pytest.fixture(name='served')
def _served(tmp_path):
  root, config = _serving_root(tmp_path, {'stable': 1, 'canary': 2})
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config, model_config_file=rollout.config_path(root),
      model_config_file_poll_wait_seconds=0.2, port=0, rest_api_port=0,
      file_system_poll_wait_seconds=0.2, metrics_path='/metrics',
      allow_version_labels_for_unavailable_models=True)).start()
  yield root, server
  server.stop(grace=1)


def _flags(root, server, metrics=True):
  flags = ['--serving-root', root, '--target', f'127.0.0.1:{server.port}']
  return flags + (['--metrics-url', f'http://127.0.0.1:{server.rest_port}/metrics']
                  if metrics else [])


def test_status_shows_both_versions_labels_states_and_figures(served, capsys):
  root, server = served
  with client_lib.ServingClient(f'127.0.0.1:{server.port}') as client:
    for label in ('stable', 'stable', 'canary'):
      client.predict('m', {'x': np.array([[1.0]], np.float32)}, version_label=label)
  assert cli.main(['rollout', 'status', 'm', *_flags(root, server), '--json']) == 0
  status = json.loads(capsys.readouterr().out)
  rows = {row['role']: row for row in status['versions']}
  assert rows['stable']['version'] == 1 and rows['stable']['labels'] == ['stable']
  assert rows['canary']['version'] == 2 and rows['canary']['state'] == 'AVAILABLE'
  assert rows['stable']['figures']['requests'] == 2
  assert rows['canary']['figures']['requests'] == 1
  assert not status['canary_label_pending']


def test_auto_promote_with_unreadable_metrics_fails_and_changes_nothing(served, capsys):
  root, server = served
  before = (rollout.config_path(root), open(rollout.config_path(root)).read())
  # No rollback on figures it could not read.
  code = cli.main(['rollout', 'promote', 'm', *_flags(root, server, metrics=False),
                   '--metrics-url', f'http://127.0.0.1:{server.rest_port}/no-metrics', '--auto'])
  assert code == 1
  assert 'cannot read the metrics at' in capsys.readouterr().err
  assert open(before[0]).read() == before[1]


def test_auto_promote_rolls_back_a_canary_short_of_requests_and_says_why(served, capsys):
  root, server = served
  assert cli.main(['rollout', 'promote', 'm', *_flags(root, server), '--auto']) == 3
  out = capsys.readouterr().out
  assert 'rolled back: the canary served 0 requests, fewer than 100' in out
  entry = rollout.model_entry(rollout.read_config(root), 'm')
  assert list(entry.model_version_policy.specific.versions) == [1]
  assert dict(entry.version_labels) == {'stable': 1}


def test_promote_by_hand_needs_no_metrics_and_deletes_only_what_the_server_unloaded(
    served, capsys):
  root, server = served
  assert cli.main(['rollout', 'promote', 'm', *_flags(root, server, metrics=False),
                   '--keep-versions', '1']) == 0
  out = capsys.readouterr().out
  assert 'promoted version 2 to stable (was 1)' in out
  assert 'retention kept the 1 newest versions; deleted 1' in out
  entry = rollout.model_entry(rollout.read_config(root), 'm')
  assert dict(entry.version_labels) == {'stable': 2}
  with client_lib.ServingClient(f'127.0.0.1:{server.port}') as client:
    assert [s['state'] for s in client.model_status('m')] == ['AVAILABLE', 'END']


def test_promote_keeps_the_old_folder_while_the_server_still_serves_it(tmp_path, capsys):
  root, config = _serving_root(tmp_path, {'stable': 1, 'canary': 2})
  # No config polling: the server keeps serving version 1.
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config, port=0, file_system_poll_wait_seconds=0,
      allow_version_labels_for_unavailable_models=True)).start()
  try:
    assert cli.main(['rollout', 'promote', 'm', *_flags(root, server, metrics=False),
                     '--keep-versions', '1', '--wait', '1']) == 0
  finally:
    server.stop(grace=1)
  assert 'version 1 still serves after 1 s' in capsys.readouterr().out
  assert (tmp_path / 'serving' / 'm' / '1').exists()


def test_rollback_needs_no_server(tmp_path, capsys):
  root, _ = _serving_root(tmp_path, {'stable': 1})
  assert cli.main(['rollout', 'rollback', 'm', '--serving-root', root]) == 0
  assert 'rolled back canary version 2; stable stays on version 1' in capsys.readouterr().out
  assert not (tmp_path / 'serving' / 'm' / '2').exists()


def test_a_serving_root_without_models_config_is_named(tmp_path, capsys):
  assert cli.main(['rollout', 'rollback', 'm', '--serving-root', str(tmp_path)]) == 1
  assert f'no models.config in {tmp_path}: nothing was pushed there' in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['rollback', 'nope'], "models.config has no model 'nope' (it has: m)"),
    (['promote', 'm', '--auto', '--error-rate-margin', '2'], 'must be between 0 and 1, got 2'),
    (['promote', 'm', '--auto', '--latency-factor', '0.5'], 'must be at least 1, got 0.5'),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
  root, _ = _serving_root(tmp_path, {})
  argv = ['rollout', *argv, '--serving-root', root]
  try:
    code = cli.main(argv)
  except SystemExit as exit_:  # argparse's usage errors
    code = exit_.code
  assert code in (1, 2)
  err = capsys.readouterr().err
  assert message in err and 'Traceback' not in err
