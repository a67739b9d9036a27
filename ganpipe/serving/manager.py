"""Model lifecycle as TF Serving runs it: version policies, polling, availability-preserving reloads."""

import dataclasses
import enum
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from ganpipe.serving import errors
from ganpipe.serving import periodic
from ganpipe.serving import servable as servable_lib

log = logging.getLogger(__name__)
_MAX_VERSION = 2**63 - 1  # versions are int64 in every TF Serving message


class State(enum.IntEnum):
  """ModelVersionStatus.State values."""
  START = 10
  LOADING = 20
  AVAILABLE = 30
  UNLOADING = 40
  END = 50


@dataclasses.dataclass
class VersionStatus:
  version: int
  state: State
  # A failed load: its message and status code, as TF Serving reports them.
  error: Optional[str] = None
  error_code: grpc.StatusCode = grpc.StatusCode.OK
  servable: Optional[servable_lib.LoadedVersion] = None
  # What the load attempt read (saved_model.pb's size and time). A failed version is retried
  # --max_num_load_retries times, --load_retry_interval_micros apart, as in TF Serving; after
  # that only once saved_model.pb changes.
  fingerprint: Optional[Tuple] = None
  failures: int = 0  # Failed attempts in a row on these files.
  failed_at: float = 0.0  # time.monotonic() of the last one.


class ModelManager:
  """Loads, serves and unloads the versions of every configured model.

  A new version is loaded (and warmed up) before any version it replaces is unloaded, and a
  version that fails to load leaves what was serving in place, with its error in the status.
  """

  def __init__(self, config: model_server_config_pb2.ModelServerConfig,
               warmup: Callable[[servable_lib.LoadedVersion], int],
               poll_wait_seconds: float = 1.0, session_config=None,
               on_load: Optional[Callable[[str, bool, float], None]] = None,
               max_load_retries: int = 5, load_retry_interval_seconds: float = 60.0,
               saved_model_tags: Sequence[str] = servable_lib.DEFAULT_TAGS):
    """`on_load(path, succeeded, seconds)` hears of every SavedModel load attempt.

    A version that fails to load is tried again at a later poll, `max_load_retries` times at
    most and `load_retry_interval_seconds` apart (TF Serving's --max_num_load_retries and
    --load_retry_interval_micros), for failures that pass: a file system that was briefly
    unreachable, say. After that it is tried again only when its saved_model.pb changes (the
    version copied again).
    """
    if max_load_retries < 0 or load_retry_interval_seconds < 0:
      raise ValueError('max_load_retries and load_retry_interval_seconds must not be negative')
    self._tags = tuple(saved_model_tags)
    self._max_load_retries = max_load_retries
    self._load_retry_interval = load_retry_interval_seconds
    self._warmup = warmup
    self._on_load = on_load
    self._session_config = session_config
    self._lock = threading.RLock()
    self._configs: Dict[str, model_server_config_pb2.ModelConfig] = {}
    self._versions: Dict[str, Dict[int, VersionStatus]] = {}
    # The models whose empty (or missing) base path was logged, so it is said once, not per poll.
    self._said_empty: Dict[str, str] = {}
    self._sync_lock = threading.Lock()
    # The poller must outlive one bad scan (a base path on a flaky file system).
    self._poller = (periodic.Periodic('version-poller', poll_wait_seconds, self.sync,
                                      'polling for model versions failed; will retry')
                    if poll_wait_seconds > 0 else None)
    self.set_config(config, sync=False)

  # --- configuration -------------------------------------------------------------------------
  def set_config(self, config: model_server_config_pb2.ModelServerConfig, sync: bool = True) -> None:
    """Applies a (new) ModelServerConfig: models are added, changed or removed."""
    with self._lock:
      self._configs = {model.name: model for model in config.model_config_list.config}
      for name in self._configs:
        self._versions.setdefault(name, {})
    if sync:
      self.sync()

  def model_names(self) -> List[str]:
    with self._lock:
      return sorted(self._configs)

  def has_model(self, name: str) -> bool:
    with self._lock:
      return name in self._configs

  def missing_base_paths(self) -> Dict[str, str]:
    """model name -> base path, for the configured models whose base path does not exist."""
    with self._lock:
      configs = list(self._configs.values())
    return {config.name: config.base_path for config in configs
            if not tf.io.gfile.exists(config.base_path)}

  # --- polling -------------------------------------------------------------------------------
  def start(self) -> None:
    """Loads what is on disk now, then keeps polling in the background."""
    self.sync()
    if self._poller is not None:
      self._poller.start()

  def stop(self) -> None:
    if self._poller is not None:
      self._poller.stop()
    with self._lock:
      for statuses in self._versions.values():
        for status in statuses.values():
          if status.state == State.AVAILABLE:
            status.state, status.servable = State.END, None

  def sync(self) -> None:
    """One pass: load the versions the policies want, then unload what they replaced."""
    with self._sync_lock:
      with self._lock:
        configs = dict(self._configs)
        removed = [name for name, statuses in self._versions.items() if name not in configs and
                   any(s.state != State.END for s in statuses.values())]
      for name in removed:
        self._unload_all(name)
      for name, config in configs.items():
        self._sync_model(config)

  def _say_empty(self, config: model_server_config_pb2.ModelConfig) -> None:
    """Logs once, not at every poll, that a model has no version to load yet, and why."""
    missing = not tf.io.gfile.exists(config.base_path)
    said = f'{config.base_path} {missing}'
    if self._said_empty.get(config.name) == said:
      return
    self._said_empty[config.name] = said
    if missing:
      log.warning('model %s: its base path %s does not exist; waiting for it', config.name,
                  config.base_path)
    else:
      log.warning('model %s: no versions under %s yet; waiting for its first version',
                  config.name, config.base_path)

  def _sync_model(self, config: model_server_config_pb2.ModelConfig) -> None:
    on_disk = _versions_on_disk(config.base_path)
    wanted = _apply_policy(config.model_version_policy, sorted(on_disk))
    if not on_disk:
      self._say_empty(config)
    else:
      self._said_empty.pop(config.name, None)
    for version in wanted:
      with self._lock:
        status = self._versions[config.name].get(version)
      fingerprint = _fingerprint(on_disk[version])
      failures = 0
      if status is not None and status.error and status.fingerprint == fingerprint:
        if (status.failures > self._max_load_retries or
            time.monotonic() - status.failed_at < self._load_retry_interval):
          continue
        failures = status.failures
        log.info('retrying the load of %s version %d (retry %d of %d)', config.name, version,
                 failures, self._max_load_retries)
      elif status is not None and status.state in (State.LOADING, State.AVAILABLE):
        continue
      self._load(config.name, version, on_disk[version], fingerprint, failures)
    with self._lock:
      statuses = self._versions[config.name]
      wanted_available = [v for v in wanted
                          if v in statuses and statuses[v].state == State.AVAILABLE]
      # Unload replaced versions only once a wanted one serves: a failed push keeps the old one.
      if wanted_available:
        retired = [status for version, status in statuses.items()
                   if version not in wanted and status.state == State.AVAILABLE]
      else:
        retired = []
      for status in retired:
        status.state = State.UNLOADING
    for status in retired:
      log.info('unloading %s version %d', config.name, status.version)
      with self._lock:
        status.servable, status.state = None, State.END

  def _load(self, name: str, version: int, path: str, fingerprint: Tuple,
            failures: int = 0) -> None:
    """Loads one version; `failures`: how many attempts on the same files failed before."""
    status = VersionStatus(version, State.LOADING, fingerprint=fingerprint, failures=failures)
    with self._lock:
      previous = self._versions[name].get(version)
      self._versions[name][version] = status
    log.info('loading %s version %d from %s', name, version, path)
    try:
      started = time.perf_counter()
      try:
        loaded = servable_lib.LoadedVersion(name, version, path, self._session_config, self._tags)
      except Exception:
        self._report_load(path, False, started)
        raise
      self._report_load(path, True, started)
      replayed = self._warmup(loaded)
    except Exception as e:  # pylint: disable=broad-except
      # Whatever a broken SavedModel raises, the server reports it and keeps serving. The status
      # holds the load error's own code and message, as TF Serving's (its LoaderHarness's error
      # callback publishes them with state END: core/basic_manager.cc).
      error = servable_lib.load_error(e)
      status.failures += 1
      log.error('failed to load %s version %d from %s: %s: %s%s', name, version, path,
                error.code.name, _one_line(e),
                f' (gave up after {status.failures} attempts; it is tried again when its '
                'saved_model.pb changes)' if status.failures > self._max_load_retries else '')
      with self._lock:
        status.state, status.error, status.error_code = State.END, error.message, error.code
        status.failed_at = time.monotonic()
        if previous is not None and previous.state == State.AVAILABLE:
          self._versions[name][version] = previous
      return
    with self._lock:
      status.servable, status.state = loaded, State.AVAILABLE
    log.info('%s version %d is AVAILABLE (%d warmup requests replayed)', name, version, replayed)

  def _report_load(self, path: str, succeeded: bool, started: float) -> None:
    if self._on_load is not None:
      self._on_load(path, succeeded, time.perf_counter() - started)

  def _unload_all(self, name: str) -> None:
    """Unloads a model removed from the config. Its versions stay known, as END: TF Serving's
    ServableStateMonitor keeps every version's last state (core/servable_state_monitor.cc)."""
    with self._lock:
      for status in self._versions.get(name, {}).values():
        status.servable, status.state = None, State.END

  # --- lookups -------------------------------------------------------------------------------
  def statuses(self, name: str, version: Optional[int] = None) -> List[VersionStatus]:
    """Every version of the model the server has known, as GetModelStatusWithModelSpec lists
    them (model_servers/get_model_status_impl.cc), whether or not it is still configured."""
    with self._lock:
      statuses = self._versions.get(name, {})
      if version is None and not statuses:
        raise errors.not_found(f'Could not find any versions of model {name}')
      if version is not None:
        if version not in statuses:
          raise errors.not_found(f'Could not find version {version} of model {name}')
        return [dataclasses.replace(statuses[version])]
      return [dataclasses.replace(s) for _, s in sorted(statuses.items())]

  def version_labels(self, name: str) -> Dict[str, int]:
    """The labels model `name` has now ({} for a model not configured)."""
    with self._lock:
      config = self._configs.get(name)
      return dict(config.version_labels) if config is not None else {}

  def is_available(self, name: str, version: int) -> bool:
    with self._lock:
      status = self._versions.get(name, {}).get(version)
      return status is not None and status.state == State.AVAILABLE

  def resolve(self, name: str, version: Optional[int] = None,
              label: Optional[str] = None) -> servable_lib.LoadedVersion:
    """The servable a request names: a version, a label, or the latest available version."""
    with self._lock:
      config = self._configs.get(name)
      if config is None:
        raise errors.not_found(f'Servable not found for request: Latest({name})')
      statuses = self._versions.get(name, {})
      if label:
        if label not in config.version_labels:
          raise errors.invalid_argument(f'Unrecognized servable version label: {label} of model '
                                        f'{name}; labels: {sorted(config.version_labels)}')
        version = config.version_labels[label]
      if version is not None:
        status = statuses.get(version)
        if status is None or status.state != State.AVAILABLE:
          raise errors.not_found(f'Servable not found for request: Specific({name}, {version})')
        return status.servable
      available = [v for v, s in statuses.items() if s.state == State.AVAILABLE]
      if not available:
        raise errors.not_found(f'Servable not found for request: Latest({name})')
      return statuses[max(available)].servable


def _versions_on_disk(base_path: str) -> Dict[int, str]:
  """Numeric version folders that hold a SavedModel; others (temp folders, files) are ignored."""
  try:
    names = tf.io.gfile.listdir(base_path)
  except tf.errors.NotFoundError:
    return {}
  versions = {}
  for name in names:
    name = name.rstrip('/')
    # As TF Serving's safe_strto64: ASCII digits that fit an int64; others are not versions.
    if name.isascii() and name.isdigit() and 0 < int(name) <= _MAX_VERSION:
      path = tf.io.gfile.join(base_path, name)
      if tf.io.gfile.exists(tf.io.gfile.join(path, 'saved_model.pb')):
        versions[int(name)] = path
  return versions


def _apply_policy(policy, versions: List[int]) -> List[int]:
  """The versions a ServableVersionPolicy (latest N by default, all, specific) wants."""
  choice = policy.WhichOneof('policy_choice')
  if choice == 'all':
    return versions
  if choice == 'specific':
    return [v for v in versions if v in set(policy.specific.versions)]
  count = policy.latest.num_versions if choice == 'latest' and policy.latest.num_versions else 1
  return versions[-count:]


def _fingerprint(path: str) -> Tuple:
  stat = tf.io.gfile.stat(tf.io.gfile.join(path, 'saved_model.pb'))
  return (stat.length, stat.mtime_nsec)


def _one_line(error: BaseException) -> str:
  text = getattr(error, 'message', None) or str(error) or type(error).__name__
  return ' '.join(text.split())[:500]
