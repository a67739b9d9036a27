"""ganpipe.serving.periodic: the pollers' background thread."""

import logging
import threading

import pytest

from ganpipe.serving import periodic


def test_a_failing_call_is_logged_and_the_next_call_still_happens(caplog):
  calls = []
  third = threading.Event()

  def flaky():
    calls.append(len(calls))
    if len(calls) == 1:
      raise OSError('a flaky file system')
    if len(calls) == 3:
      third.set()

  poller = periodic.Periodic('test-poller', 0.01, flaky, 'polling failed; will retry')
  with caplog.at_level(logging.ERROR, logger='ganpipe.serving.periodic'):
    poller.start()
    assert third.wait(5), f'only {len(calls)} calls'
    poller.stop()
  errors = [r for r in caplog.records if r.name == 'ganpipe.serving.periodic']
  assert [r.getMessage() for r in errors] == ['polling failed; will retry']
  assert 'a flaky file system' in caplog.text


def test_stop_waits_for_the_call_in_progress_and_can_be_called_twice():
  started, release, finished = threading.Event(), threading.Event(), threading.Event()

  def slow():
    started.set()
    release.wait(5)
    finished.set()

  poller = periodic.Periodic('test-poller', 0.01, slow, 'failed')
  poller.start()
  assert started.wait(5)
  threading.Timer(0.2, release.set).start()
  poller.stop()
  assert finished.is_set()
  poller.stop()
  assert not any(t.name == 'test-poller' for t in threading.enumerate())


@pytest.mark.parametrize('interval', [0, -1])
def test_the_interval_must_be_positive(interval):
  with pytest.raises(ValueError, match='interval must be positive'):
    periodic.Periodic('test-poller', interval, lambda: None, 'failed')
