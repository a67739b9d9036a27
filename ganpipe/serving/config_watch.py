"""`--model_config_file_poll_wait_seconds`: edits to the model config file apply while serving.

As in tensorflow_model_server, the file is read again every N seconds and a changed config is
applied as a HandleReloadConfigRequest would apply it: models are added, changed or removed, and
version labels move only to versions that serve. A file that cannot be read, does not parse or is
refused leaves the running config in place, with the error in the log; the file is tried again
at the next poll, so a fix, or the version a label waits for, takes effect without a restart.
A config sent with HandleReloadConfigRequest stays in effect until the file changes again.
"""

import logging
from typing import Callable, Optional

from tensorflow_serving.config import model_server_config_pb2

from ganpipe.serving import config as config_lib
from ganpipe.serving import errors
from ganpipe.serving import periodic

log = logging.getLogger(__name__)

ApplyConfig = Callable[[model_server_config_pb2.ModelServerConfig], None]


class ConfigFileWatcher:
  """Polls a ModelServerConfig text file and applies it whenever its contents change."""

  def __init__(self, path: str, wait_seconds: float, apply: ApplyConfig,
               applied: model_server_config_pb2.ModelServerConfig):
    """`applied` is the config the server runs now, read from `path` at start-up."""
    self._path = path
    self._apply = apply
    self._applied = applied.SerializeToString(deterministic=True)
    self._last_error: Optional[str] = None
    # A model that fails to load is in its status, not in this log; the failure is the unexpected.
    self._poller = periodic.Periodic('config-file-poller', wait_seconds, self.poll,
                                     f'applying model config file {path} failed; will retry')

  def start(self) -> None:
    self._poller.start()

  def stop(self) -> None:
    self._poller.stop()

  def poll(self) -> bool:
    """Reads the file once; applies it if it changed. Returns whether a new config was applied."""
    try:
      config = config_lib.read_model_server_config(self._path)
      serialized = config.SerializeToString(deterministic=True)
      if serialized == self._applied:
        self._last_error = None
        return False
      log.info('model config file %s changed; applying it', self._path)
      self._apply(config)
    except (config_lib.ConfigError, errors.ServingError) as e:
      self._report(str(e))
      return False
    self._applied, self._last_error = serialized, None
    log.info('model config file %s applied', self._path)
    return True

  def _report(self, message: str) -> None:
    # Logged once per distinct error, not at every poll, while the running config keeps serving.
    if message != self._last_error:
      log.error('model config file %s not applied; the running config stays: %s', self._path,
                message)
    self._last_error = message
