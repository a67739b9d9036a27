"""The model server under validation: which binary to run, and its subprocess on a loopback port."""

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
from typing import List, Optional

import absl.logging as logging
import portpicker

TF_SERVING_BINARY = 'tensorflow_model_server'
LOG_TAIL_LINES = 15
LOG_TAIL_CHARS = 2000  # the tail goes into the blessing's `reason`
# The server's output file; TF Serving logs this line too, so both flavours are parsed alike.
SERVER_LOG = 'server.log'
_LISTENING_LINE = re.compile(r'Running gRPC ModelServer at (\S+):(\d+)')


class ServerError(RuntimeError):
  """The model server could not be run, for a reason that is not the model's."""


@dataclasses.dataclass(frozen=True)
class ServingBinary:
  """A model server speaking TF Serving's gRPC API.

  Attributes:
    path: a `tensorflow_model_server` compatible executable, or '' for ganpipe's own server.
  """
  path: str = ''

  @property
  def is_own_server(self) -> bool:
    return not self.path

  def describe(self) -> str:
    return self.path or "ganpipe's model server (python -m ganpipe.serving)"

  def command(self, model_name: str, base_path: str, port: int) -> List[str]:
    if self.is_own_server:
      return [sys.executable, '-m', 'ganpipe.serving', '--port', str(port), '--model_name',
              model_name, '--model_base_path', base_path, '--file_system_poll_wait_seconds', '0']
    return [self.path, f'--port={port}', f'--model_name={model_name}',
            f'--model_base_path={base_path}']


def choose_serving_binary(configured: str = '') -> ServingBinary:
  """The configured binary; else `tensorflow_model_server` if on PATH; else ganpipe's server.

  Raises:
    ServerError: the configured binary is not an executable file or a command on PATH.
  """
  if configured:
    path = shutil.which(configured)
    if path is None:
      raise ServerError(f'serving binary {configured!r} is not an executable file or a command '
                        'on PATH')
    return ServingBinary(path)
  return ServingBinary(shutil.which(TF_SERVING_BINARY) or '')


class ModelServerProcess:
  """A model server subprocess on a loopback port, killed with its process group on exit.

  tensorflow_model_server cannot pick a port itself, so it gets a free one; ganpipe's server
  binds port 0 and reports the port it got in its "Running gRPC ModelServer at" line.
  """

  def __init__(self, binary: ServingBinary, model_name: str, base_path: str, log_dir: str):
    self.binary = binary
    self._port = 0 if binary.is_own_server else portpicker.pick_unused_port()
    self._command = binary.command(model_name, base_path, self._port)
    self._log_path = os.path.join(log_dir, SERVER_LOG)
    self._popen: Optional[subprocess.Popen] = None

  def __enter__(self) -> 'ModelServerProcess':
    logging.info('Starting the model server: %s', ' '.join(self._command))
    # A file, not a pipe: a chatty server can never block on a full pipe nobody reads.
    with open(self._log_path, 'wb') as log:
      try:
        # Its own session, so that killing the group also ends any process a wrapper started.
        self._popen = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
      except OSError as error:
        raise ServerError(f'cannot start the model server {self.binary.describe()}: '
                          f'{error}') from error
    return self

  def __exit__(self, *exc_info) -> None:
    self.kill()
    logging.info('Model server output:\n%s', self.log_text())

  @property
  def pid(self) -> int:
    return self._popen.pid

  def kill(self) -> None:
    """Kills the server and reaps it; a no-op once it is gone."""
    if self._popen is None:
      return
    # Only a process not yet reaped is certain to still own its pid (and process group id).
    if self._popen.returncode is None:
      try:
        os.killpg(self._popen.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    self._popen.wait()

  def exit_code(self) -> Optional[int]:
    return self._popen.poll()

  def target(self) -> Optional[str]:
    """The server's `host:port`, once known."""
    if self._port:
      return f'127.0.0.1:{self._port}'
    match = _LISTENING_LINE.search(self.log_text())
    return f'127.0.0.1:{match.group(2)}' if match else None

  def log_text(self) -> str:
    with open(self._log_path, encoding='utf-8', errors='replace') as f:
      return f.read()

  def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
    tail = ' | '.join(line.strip() for line in self.log_text().splitlines()[-lines:]
                      if line.strip())
    return tail[-LOG_TAIL_CHARS:]
