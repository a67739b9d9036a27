"""One run at a time on a metadata store; a crashed run's lock does not outlive it."""

import os
import signal
import subprocess
import sys

import pytest

from ganpipe.app import cli
from ganpipe.pipeline import store_lock

HOLDER = '''
import sys, time
from ganpipe.pipeline import store_lock
with store_lock.hold(sys.argv[1]):
  print('held', flush=True)
  time.sleep(600)
'''


@pytest.fixture
def held(tmp_path):
  """Another process holding the lock of `tmp_path/metadata/metadata.sqlite`."""
  metadata_path = str(tmp_path / 'metadata' / 'metadata.sqlite')
  holder = subprocess.Popen([sys.executable, '-c', HOLDER, metadata_path],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
  assert holder.stdout.readline().strip() == 'held'
  yield metadata_path, holder
  if holder.poll() is None:
    holder.kill()
  holder.wait()


def test_a_second_run_on_the_store_is_refused_naming_the_first(held):
  metadata_path, holder = held
  with pytest.raises(store_lock.StoreBusyError, match=(
      rf'^another ganpipe run \(pid {holder.pid}, started \S+\) is using the metadata store '
      rf'{metadata_path}, so this run will not start\. Fix: wait')):
    with store_lock.hold(metadata_path):
      pass


def test_the_lock_dies_with_its_process_and_is_released_on_exit(held, tmp_path):
  metadata_path, holder = held
  os.kill(holder.pid, signal.SIGKILL)  # a crash: no finally, no cleanup
  holder.wait()
  with store_lock.hold(metadata_path):
    with pytest.raises(store_lock.StoreBusyError):
      with store_lock.hold(metadata_path):  # held here now, by this process
        pass
  with store_lock.hold(metadata_path):  # released on leaving the block
    pass
  other = str(tmp_path / 'other' / 'metadata.sqlite')
  with store_lock.hold(metadata_path), store_lock.hold(other):  # another store is another lock
    pass


def test_ganpipe_run_says_so_in_one_line_before_anything_runs(held, tmp_path, capsys):
  metadata_path, holder = held
  code = cli.main(['run', '--small', '--paths.metadata_path', metadata_path,
                   '--paths.pipeline_root', str(tmp_path / 'pipeline')])
  assert code == cli.EXIT_FAILED
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      f'ganpipe: error: another ganpipe run (pid {holder.pid}, started '), lines
  assert not os.path.exists(tmp_path / 'pipeline')
