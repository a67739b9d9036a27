"""A daemon thread that calls a function every N seconds until it is stopped."""

import logging
import threading
from typing import Callable, Optional

log = logging.getLogger(__name__)


class Periodic:
  """Calls `fn` every `interval` seconds on a daemon thread, from `start()` until `stop()`.

  An exception from `fn` is logged with `failure` as its message and the next call still
  happens: a poller must outlive one bad pass (a flaky file system, a half-written file).
  """

  def __init__(self, name: str, interval: float, fn: Callable[[], object], failure: str):
    if interval <= 0:
      raise ValueError(f'interval must be positive, got {interval}')
    self._name = name
    self._interval = interval
    self._fn = fn
    self._failure = failure
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def start(self) -> None:
    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
    self._thread.start()

  def stop(self) -> None:
    """Stops the thread, waiting for a call in progress to end. Safe to call more than once."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None

  def _run(self) -> None:
    while not self._stop.wait(self._interval):
      try:
        self._fn()
      except Exception:  # pylint: disable=broad-except
        log.exception(self._failure)
