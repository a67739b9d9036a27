"""Infra validation: its arguments, and real validations of broken models on ganpipe's server,
whose process never outlives them."""

import sys
import time

import psutil
import pytest

from ganpipe.components.infra_validator import model_server
from ganpipe.components.infra_validator import validation
from ganpipe.serving import client as client_lib
from tests.components.infra_validator import conftest


@pytest.mark.parametrize('args, message', [
    (dict(kind='regressor'), "model_kind must be one of classifier, generator, got 'regressor'"),
    (dict(model_name='a/b'), "model_name must be a non-empty name without '/'"),
    (dict(timeout_seconds=0), 'must be positive, got 0 and 8'),
    (dict(num_requests=0), 'must be positive, got 120.0 and 0'),
])
def test_bad_arguments(tmp_path, args, message):
  arguments = dict(model_dir=str(tmp_path), model_name='m', kind='generator')
  arguments.update(args)
  with pytest.raises(ValueError, match=message):
    validation.validate(**arguments)


def test_a_model_without_saved_model_pb_is_not_blessed(tmp_path):
  result = validation.validate(str(tmp_path), 'generator', 'generator')
  assert not result.blessed
  assert result.reason == f'no SavedModel in {tmp_path}: saved_model.pb is missing'


@pytest.fixture
def servers(monkeypatch):
  """Records every model server process the test starts."""
  started = []

  class RecordingServer(model_server.ModelServerProcess):

    def __enter__(self):
      started.append(super().__enter__())
      return started[-1]

  monkeypatch.setattr(model_server, 'ModelServerProcess', RecordingServer)
  return started


def _gone(pid, timeout=5.0):
  """Killed: no process, or a zombie its (orphaned, reparented) parent has not reaped yet."""
  deadline = time.monotonic() + timeout  # SIGKILL takes effect asynchronously
  while True:
    try:
      if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
        return True
    except psutil.NoSuchProcess:
      return True
    if time.monotonic() > deadline:
      return False
    time.sleep(0.05)


def _assert_gone(servers, count=1):
  assert len(servers) == count
  for server in servers:
    assert not psutil.pid_exists(server.pid)  # killed and reaped


def test_a_server_that_exits_leaves_the_model_not_blessed(pipeline_output, tmp_path, servers):
  binary = conftest.executable(tmp_path / 'server',
                               'echo "Failed to start server. Error: bad model"\n' 'exit 3\n')
  result = validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'),
                               'generator', 'generator', serving_binary=binary)
  assert not result.blessed
  assert result.reason == ('model did not become AVAILABLE within 120 s: the server exited '
                           'with code 3: Failed to start server. Error: bad model')
  _assert_gone(servers)


def test_a_server_that_never_answers_is_killed_at_the_time_limit(pipeline_output, tmp_path,
                                                                  servers):
  child = tmp_path / 'child.pid'
  binary = conftest.executable(tmp_path / 'server', f'sleep 60 &\necho $! > {child}\nwait\n')
  result = validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'),
                               'generator', 'generator', serving_binary=binary,
                               timeout_seconds=1.5)
  assert not result.blessed
  assert result.reason.startswith('model did not become AVAILABLE within 1.5 s: GetModelStatus '
                                  'failed:')
  _assert_gone(servers)
  assert _gone(int(child.read_text()))  # the server's own child too


def test_the_server_is_killed_when_validation_raises(pipeline_output, tmp_path, servers,
                                                     monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError('status check broke')

  monkeypatch.setattr(client_lib.ServingClient, 'model_status', broken)
  binary = conftest.executable(tmp_path / 'server', 'sleep 60\n')
  with pytest.raises(RuntimeError, match='status check broke'):
    validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'), 'generator',
                        'generator', serving_binary=binary)
  _assert_gone(servers)


def test_own_server_exiting_is_an_infrastructure_error(pipeline_output, servers, monkeypatch):
  monkeypatch.setattr(model_server.ServingBinary, 'command', lambda *args: [
      sys.executable, '-c', 'print("ImportError: no serving"); raise SystemExit(4)'])
  with pytest.raises(model_server.ServerError,
                     match='failed: the server exited with code 4: ImportError: no serving'):
    validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'), 'generator',
                        'generator')
  _assert_gone(servers)


# On ganpipe's server: a few seconds each, for TensorFlow's import.
def test_a_generator_without_generate_is_not_blessed(pipeline_output, servers):
  result = validation.validate(str(pipeline_output / 'no_generate' / 'Format-Serving'),
                               'generator', 'generator')
  assert not result.blessed
  assert result.reason == "signature 'generate' is missing; the model has: serving_default"
  assert result.requests == ()
  _assert_gone(servers)


def test_probabilities_that_do_not_sum_to_one_are_not_blessed(pipeline_output, servers):
  result = validation.validate(str(pipeline_output / 'half_classifier' / 'Format-Serving'),
                               'classifier', 'classifier', str(pipeline_output / 'examples'),
                               num_requests=3)
  assert not result.blessed
  assert result.reason == 'probabilities of request 0 sum to 0.7 (image 0), not 1'
  _assert_gone(servers)
