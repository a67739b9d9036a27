"""One run at a time on a metadata store: an fcntl lock on a file beside the SQLite store.

Two runs writing one MLMD store would interleave their executions and could both push a model
version. `flock` is released by the operating system when the process ends however it ends, so
a crashed run never leaves a stale lock behind; the file itself stays, naming the last holder.
"""

import contextlib
import datetime
import fcntl
import os
from typing import Iterator

LOCK_SUFFIX = '.lock'


class StoreBusyError(RuntimeError):
  """Another process holds the metadata store's lock."""


def lock_path(metadata_path: str) -> str:
  return os.path.abspath(metadata_path) + LOCK_SUFFIX


@contextlib.contextmanager
def hold(metadata_path: str) -> Iterator[None]:
  """Holds the store's lock for the body; object-store paths are not locked (no flock there).

  Raises:
    StoreBusyError: another run holds it, naming that run's process and start time.
  """
  if '://' in metadata_path:
    yield
    return
  path = lock_path(metadata_path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'a+', encoding='utf-8') as lock_file:
    try:
      fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock_file.seek(0)
      holder = lock_file.read().strip() or 'another process'
      raise StoreBusyError(
          f'another ganpipe run ({holder}) is using the metadata store {metadata_path}, so this '
          'run will not start. Fix: wait for it to finish, or pass another '
          '--paths.metadata_path') from None
    lock_file.seek(0)
    lock_file.truncate()
    started = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
    lock_file.write(f'pid {os.getpid()}, started {started}')
    lock_file.flush()
    try:
      yield
    finally:
      fcntl.flock(lock_file, fcntl.LOCK_UN)
