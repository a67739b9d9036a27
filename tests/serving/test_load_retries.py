"""Load retries: a version whose load fails is tried again, as TF Serving's
--max_num_load_retries and --load_retry_interval_micros say, then given up until its
saved_model.pb changes.
"""

import logging
import os

import pytest
from tensorflow_serving.config import model_server_config_pb2

from ganpipe.serving import manager as manager_lib
from ganpipe.serving import servable as servable_lib
from tests.serving import fixture_models
from tests.serving.flags import serve_options


class _FlakyLoads:
  """Stands in for LoadedVersion: the first `failures` loads fail, as on a flaky file system."""

  def __init__(self, failures: int):
    self.failures = failures
    self.attempts = 0

  def __call__(self, model_name, version, path, session_config=None, tags=None):
    self.attempts += 1
    if self.attempts <= self.failures:
      raise OSError(f'storage unreachable (attempt {self.attempts})')
    return _Loaded(model_name, version)


class _Loaded:
  def __init__(self, model_name, version):
    self.model_name, self.version = model_name, version


@pytest.fixture(name='base_path')
def _base_path(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  return str(tmp_path / 'm')


def _manager(base_path, monkeypatch, failures, retries, interval=0.0):
  loads = _FlakyLoads(failures)
  monkeypatch.setattr(servable_lib, 'LoadedVersion', loads)
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add(name='m', base_path=base_path)
  model.model_platform = 'tensorflow'
  manager = manager_lib.ModelManager(config, lambda loaded: 0, poll_wait_seconds=0,
                                     max_load_retries=retries,
                                     load_retry_interval_seconds=interval)
  return manager, loads


def _status(manager):
  (status,) = manager.statuses('m')
  return status


def test_a_load_that_fails_for_a_while_succeeds_on_a_retry(base_path, monkeypatch):
  manager, loads = _manager(base_path, monkeypatch, failures=2, retries=5)
  manager.sync()
  assert _status(manager).state == manager_lib.State.END
  assert 'storage unreachable (attempt 1)' in _status(manager).error
  manager.sync()
  manager.sync()
  assert loads.attempts == 3
  assert _status(manager).state == manager_lib.State.AVAILABLE
  manager.sync()
  assert loads.attempts == 3  # A version that serves is not loaded again.


def test_a_load_is_given_up_after_its_retries_until_the_version_changes(base_path, monkeypatch,
                                                                        caplog):
  manager, loads = _manager(base_path, monkeypatch, failures=100, retries=2)
  with caplog.at_level(logging.ERROR, logger='ganpipe.serving.manager'):
    for _ in range(6):
      manager.sync()
  assert loads.attempts == 3  # The first attempt and two retries.
  status = _status(manager)
  # The status carries the load error itself, as TF Serving's does; the log says what follows.
  assert (status.state, status.error) == (manager_lib.State.END, 'storage unreachable (attempt 3)')
  assert 'gave up after 3 attempts; it is tried again when its saved_model.pb changes' in (
      caplog.records[-1].getMessage())
  # The version copied again: it is loaded again.
  pb = os.path.join(base_path, '1', 'saved_model.pb')
  os.utime(pb, ns=(os.stat(pb).st_atime_ns, os.stat(pb).st_mtime_ns + 10**9))
  loads.failures = 0
  manager.sync()
  assert loads.attempts == 4 and _status(manager).state == manager_lib.State.AVAILABLE


def test_retries_wait_the_retry_interval(base_path, monkeypatch):
  manager, loads = _manager(base_path, monkeypatch, failures=100, retries=5, interval=3600)
  for _ in range(3):
    manager.sync()
  assert loads.attempts == 1


def test_the_retry_flags_take_tf_servings_names_and_defaults():
  default = serve_options()
  assert (default.max_num_load_retries, default.load_retry_interval_micros) == (5, 60_000_000)
  given = serve_options('--max_num_load_retries=0', '--load_retry_interval_micros=250000')
  assert (given.max_num_load_retries, given.load_retry_interval_micros) == (0, 250_000)
  with pytest.raises(ValueError, match='must not be negative'):
    serve_options('--max_num_load_retries=-1')
