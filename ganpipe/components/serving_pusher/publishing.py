"""Atomic, monotonic, retained model versions under a TF Serving base path, and models.config."""

import os
import re
import shutil
import time
from typing import Callable, Dict, Iterable, List, Optional

from absl import logging
import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from ganpipe.components import versioning
from ganpipe.components.serving_pusher import rollout

MODELS_CONFIG = rollout.MODELS_CONFIG
# Dot-prefixed and non-numeric: neither TF Serving nor our server ever takes it for a version.
_TEMP_PREFIX = '.incoming-'
_RENAME_ATTEMPTS = 5


def next_version(base_path: str, now: Optional[float] = None) -> int:
  """A Unix-time version, as TFX's Pusher gives, but always above every existing version.

  Two pushes in one second, or a clock that went backwards, still give increasing versions, and
  TF Serving's "latest" policy serves the newest push.
  """
  existing = versioning.versions(base_path)
  stamp = int(time.time() if now is None else now)
  return max([stamp] + [v + 1 for v in existing])


def push_version(model_path: str, base_path: str, version: Optional[int] = None) -> str:
  """Copies a SavedModel to `<base_path>/<version>/` so that no partial version is ever visible.

  The copy goes to a temporary folder beside the versions, on the same file system, and is renamed
  into place when complete: TF Serving polls the base path and would otherwise load a half-copied
  model. (On object stores, where rename is a copy, `saved_model.pb` is still written last.)
  Without `version`, a version that another push takes meanwhile is skipped for the next one.

  Returns:
    The path of the new version.
  Raises:
    FileExistsError: the version asked for already exists.
  """
  tf.io.gfile.makedirs(base_path)
  versioning.remove_stale_temporaries(base_path, _TEMP_PREFIX)
  wanted = version
  version = next_version(base_path) if wanted is None else wanted
  if wanted is not None and tf.io.gfile.exists(os.path.join(base_path, str(version))):
    raise FileExistsError(f'version {version} already exists at {base_path}/{version}')
  temporary = os.path.join(base_path, versioning.temporary_name(_TEMP_PREFIX, version))
  try:
    _copy_tree(model_path, temporary)
    for _ in range(_RENAME_ATTEMPTS):
      final = os.path.join(base_path, str(version))
      try:
        tf.io.gfile.rename(temporary, final)
        return final
      except tf.errors.AlreadyExistsError:
        if wanted is not None:
          raise FileExistsError(f'version {version} already exists at {final}') from None
        version = next_version(base_path)  # a concurrent push took it
    raise FileExistsError(f'{_RENAME_ATTEMPTS} versions under {base_path} were taken by '
                          'other pushes while this one was renaming')
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.rmtree(temporary)


def retain_latest(base_path: str, keep: int, protect: Iterable[int] = ()) -> List[int]:
  """Deletes all but the `keep` newest versions, and those in `protect` (versions a rollout
  serves); returns the deleted ones."""
  if keep < 1:
    raise ValueError(f'keep must be at least 1, got {keep}')
  protect = set(protect)
  doomed = [v for v in versioning.versions(base_path)[:-keep] if v not in protect]
  for version in doomed:
    tf.io.gfile.rmtree(os.path.join(base_path, str(version)))
  return doomed


def write_models_config(serving_root: str, base_path_prefix: Optional[str] = None,
                        edit: Optional[Callable[[model_server_config_pb2.ModelServerConfig],
                                                None]] = None) -> str:
  """Writes `<serving_root>/models.config`, a ModelServerConfig serving every pushed model.

  Each model keeps the version policy and labels the file gave it (a rollout in progress, see
  rollout.py), less what names versions no longer on disk; a new model gets TF Serving's
  default policy, the latest version.

  Args:
    serving_root: holds one base path per model.
    base_path_prefix: where the server sees `serving_root` (a mount path in a serving pod);
      by default `serving_root` itself, made absolute when local.
    edit: changes the config before it is written (a rollout step).
  Returns:
    The path of the config file.
  """
  with rollout.config_lock(serving_root):
    config = models_config(serving_root, base_path_prefix)
    if edit is not None:
      edit(config)
    return rollout.write_config(serving_root, config)


def models_config(serving_root: str, base_path_prefix: Optional[str] = None
                  ) -> model_server_config_pb2.ModelServerConfig:
  """The config write_models_config writes, before any edit."""
  prefix = base_path_prefix or (serving_root if '://' in serving_root
                                else os.path.abspath(serving_root))
  try:
    previous = {entry.name: entry
                for entry in rollout.read_config(serving_root).model_config_list.config}
  except rollout.RolloutError as e:
    logging.warning('rewriting %s from the versions on disk: %s', MODELS_CONFIG, e)
    previous = {}
  config = model_server_config_pb2.ModelServerConfig()
  for name, on_disk in sorted(models_with_versions(serving_root).items()):
    model = config.model_config_list.config.add()
    if name in previous:
      model.model_version_policy.CopyFrom(previous[name].model_version_policy)
      model.version_labels.update(previous[name].version_labels)
      rollout.keep_valid(model, on_disk)
    model.name = name
    model.base_path = f'{prefix.rstrip("/")}/{name}'
    model.model_platform = 'tensorflow'
  return config


def models_with_versions(serving_root: str) -> Dict[str, List[int]]:
  if not tf.io.gfile.isdir(serving_root):
    return {}
  found = {}
  for name in tf.io.gfile.listdir(serving_root):
    name = name.rstrip('/')
    if re.fullmatch(r'[A-Za-z0-9_.-]+', name) and not name.startswith('.'):
      model_versions = versioning.versions(os.path.join(serving_root, name))
      if model_versions:
        found[name] = model_versions
  return found


def _copy_tree(source: str, destination: str) -> None:
  """Copies a SavedModel folder, `saved_model.pb` last (it marks a complete model)."""
  if '://' not in source and '://' not in destination:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns('saved_model.pb'))
  else:
    for directory, _, files in tf.io.gfile.walk(source):
      target = os.path.join(destination, os.path.relpath(directory, source))
      tf.io.gfile.makedirs(target)
      for name in files:
        if name != 'saved_model.pb' or directory != source:
          tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name))
  tf.io.gfile.copy(os.path.join(source, 'saved_model.pb'),
                   os.path.join(destination, 'saved_model.pb'), overwrite=True)
