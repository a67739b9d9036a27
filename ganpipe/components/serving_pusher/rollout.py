"""Canary rollouts in models.config: version policies and the `stable` and `canary` labels.

A rollout lives in the model's entry of `<serving_root>/models.config`, so TF Serving (or our
server) polling the file with `--model_config_file_poll_wait_seconds` applies each step, and the
pusher of the other model keeps it when it rewrites the file:

- direct (the default): no policy (TF Serving's `latest 1`) and no labels: a push serves at once;
- canary push: `specific { stable, canary }`, so the server loads the new version beside the old
  one and keeps both; `stable` stays where it was, and no label names the new version yet;
- `label`: `canary` (and `stable`, if not set yet) once their versions are AVAILABLE; a model
  served directly gets `specific { stable }`, so that no later push unloads it;
- `promote`: `specific { canary }` with `stable` on it; `rollback`: `specific { stable }`.

Labels go on only in a separate step because TF Serving refuses a label on a version that is
not AVAILABLE when the config is applied: ServerCore::UpdateModelVersionLabelMap
(tensorflow_serving/model_servers/server_core.cc) runs before the new config's versions are
added and fails the whole reload with FAILED_PRECONDITION "Request to assign label to version N
of model M, which is not currently available for inference". Its
--allow_version_labels_for_unavailable_models lifts that only for a label that is new (and is
off by default), so a config that named the canary at once would not even load the canary.
The pusher does not wait for the server to load the canary: a pipeline run (a Kubeflow pod, say)
need not reach the serving cluster, nor the server be up. It writes the label-free step, and
`ganpipe rollout label`, which asks the server (GetModelStatus), writes the labels.
"""

import contextlib
import dataclasses
import fcntl
import os
import uuid
from typing import Dict, Iterable, Iterator, List, Optional

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

STABLE = 'stable'
CANARY = 'canary'
DIRECT = 'direct'
ROLLOUTS = (DIRECT, CANARY)
MODELS_CONFIG = 'models.config'


class RolloutError(ValueError):
  """A rollout step that does not apply to the model's state."""


@dataclasses.dataclass(frozen=True)
class Rollout:
  """One model's rollout: the version every client gets, the one on trial, and its labels."""
  stable: Optional[int]
  canary: Optional[int]
  labels: Dict[str, int]

  @property
  def canary_labelled(self) -> bool:
    return self.canary is not None and self.labels.get(CANARY) == self.canary


def config_path(serving_root: str) -> str:
  return os.path.join(serving_root, MODELS_CONFIG)


def read_config(serving_root: str) -> model_server_config_pb2.ModelServerConfig:
  """The ModelServerConfig in `<serving_root>/models.config`; empty when there is none.

  Raises:
    RolloutError: the file does not parse.
  """
  path = config_path(serving_root)
  config = model_server_config_pb2.ModelServerConfig()
  if not tf.io.gfile.exists(path):
    return config
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    text_format.Parse(text, config)
  except text_format.ParseError as e:
    raise RolloutError(f'{path} is not a ModelServerConfig text proto: {e}') from None
  return config


@contextlib.contextmanager
def config_lock(serving_root: str) -> Iterator[None]:
  """Holds `<serving_root>/.models.config.lock` while the body reads, edits and writes the file.

  Every writer reads models.config, changes it and renames a new one over it. Two at once (the
  two pushers of a run, or a push and `ganpipe rollout`) would each write what it read, and the
  later rename would undo the other's change. This waits for the other writer instead. Object
  stores (`gs://`) have no flock, so there the writes are not serialised; nor are they when
  the folder does not exist yet, and the body's own error then says so.
  """
  if '://' in serving_root or not os.path.isdir(serving_root):
    yield
    return
  with open(os.path.join(serving_root, '.' + MODELS_CONFIG + '.lock'), 'a', encoding='utf-8') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def write_config(serving_root: str, config: model_server_config_pb2.ModelServerConfig) -> str:
  """Writes models.config with one rename, so a server polling it never reads half a file."""
  path = config_path(serving_root)
  temporary = f'{path}.{uuid.uuid4().hex[:8]}.tmp'
  with tf.io.gfile.GFile(temporary, 'w') as f:
    f.write(text_format.MessageToString(config))
  tf.io.gfile.rename(temporary, path, overwrite=True)
  return path


def read_existing_config(serving_root: str) -> model_server_config_pb2.ModelServerConfig:
  """read_config, for a step that needs the file.

  Raises:
    RolloutError: there is no file, or it does not parse.
  """
  if not tf.io.gfile.exists(config_path(serving_root)):
    raise RolloutError(f'no {MODELS_CONFIG} in {serving_root}: nothing was pushed there. Fix: '
                       "pass --serving-root with the pipeline's paths.serving_root")
  return read_config(serving_root)


def model_entry(config: model_server_config_pb2.ModelServerConfig,
                name: str) -> model_server_config_pb2.ModelConfig:
  for entry in config.model_config_list.config:
    if entry.name == name:
      return entry
  known = ', '.join(sorted(e.name for e in config.model_config_list.config)) or 'none'
  raise RolloutError(f'models.config has no model {name!r} (it has: {known})')


def keep_valid(entry: model_server_config_pb2.ModelConfig, on_disk: Iterable[int]) -> None:
  """Drops labels on versions not on disk or not served (TF Serving would refuse the whole
  config), and a specific policy none of whose versions is on disk.

  A specific policy that names a version not on disk yet, beside one that is, stays: a canary
  push names its version before the folder appears, and the other model's pusher may rewrite
  the file in between.
  """
  on_disk = set(on_disk)
  policy = entry.model_version_policy
  if (policy.WhichOneof('policy_choice') == 'specific' and
      not on_disk.intersection(policy.specific.versions)):
    entry.ClearField('model_version_policy')
  for label, version in list(entry.version_labels.items()):
    if version not in on_disk or not _serves(entry, version, on_disk):
      del entry.version_labels[label]


def state(entry: model_server_config_pb2.ModelConfig, on_disk: List[int]) -> Rollout:
  """The model's rollout, from its entry and the versions on disk (ascending)."""
  labels = dict(entry.version_labels)
  policy = entry.model_version_policy
  if policy.WhichOneof('policy_choice') == 'specific':
    served = sorted(policy.specific.versions)
    stable = labels.get(STABLE, served[0])
    others = [v for v in served if v != stable]
    return Rollout(stable, labels.get(CANARY, others[-1] if others else None), labels)
  return Rollout(labels.get(STABLE, on_disk[-1] if on_disk else None), None, labels)


def serve_directly(entry: model_server_config_pb2.ModelConfig) -> None:
  """A direct push: the newest version serves at once, and any rollout (labels too) ends."""
  entry.ClearField('model_version_policy')
  entry.version_labels.clear()


def add_canary(entry: model_server_config_pb2.ModelConfig, before: List[int],
               version: int) -> Rollout:
  """A canary push of `version`: served beside the stable version, unlabelled until it loads.

  `before`: the versions on disk before the push. Without one, the new version is the only
  one and serves alone. A canary still on trial is replaced by the new one.
  """
  stable = state(entry, before).stable if before else None
  served = [version] if stable is None else [stable, version]
  entry.model_version_policy.specific.SetInParent()
  del entry.model_version_policy.specific.versions[:]
  entry.model_version_policy.specific.versions.extend(served)
  entry.version_labels.pop(CANARY, None)
  return Rollout(stable if stable is not None else version,
                 version if stable is not None else None, dict(entry.version_labels))


def label(entry: model_server_config_pb2.ModelConfig, on_disk: List[int],
          available: Iterable[int]) -> Dict[str, int]:
  """Puts `stable` and `canary` on their versions that are AVAILABLE; returns the labels added.

  A version that is not AVAILABLE yet keeps no label, as TF Serving requires (module doc).
  """
  rollout, available = state(entry, on_disk), set(available)
  if rollout.stable is not None and rollout.stable in available and not served_versions(entry):
    # Pinned: under `latest`, a version pushed later would unload the one `stable` names.
    entry.model_version_policy.specific.versions.append(rollout.stable)
  added = {}
  for name, version in ((STABLE, rollout.stable), (CANARY, rollout.canary)):
    if version is not None and version in available and entry.version_labels.get(name) != version:
      entry.version_labels[name] = version
      added[name] = version
  return added


def promote(entry: model_server_config_pb2.ModelConfig, on_disk: List[int],
            available: Iterable[int]) -> Rollout:
  """Serves only the canary, labelled `stable`; the old stable version is no longer served.

  Raises:
    RolloutError: no canary, or the canary is not AVAILABLE (a label on it would be refused).
  """
  before = state(entry, on_disk)
  if before.canary is None:
    raise RolloutError(f'model {entry.name!r} has no canary to promote')
  if before.canary not in set(available):
    raise RolloutError(f'canary version {before.canary} of model {entry.name!r} is not '
                       'AVAILABLE on the server; it cannot take the stable label yet')
  _serve_only(entry, before.canary)
  return before


def rollback(entry: model_server_config_pb2.ModelConfig, on_disk: List[int]) -> Rollout:
  """Serves only the stable version again; returns the rollout before (its canary goes).

  Raises:
    RolloutError: no canary to remove.
  """
  before = state(entry, on_disk)
  if before.canary is None:
    raise RolloutError(f'model {entry.name!r} has no canary to roll back')
  entry.version_labels.pop(CANARY, None)
  del entry.model_version_policy.specific.versions[:]
  entry.model_version_policy.specific.versions.append(before.stable)
  return before


def served_versions(entry: model_server_config_pb2.ModelConfig) -> List[int]:
  """The versions a specific policy names: retention must not delete them."""
  if entry.model_version_policy.WhichOneof('policy_choice') == 'specific':
    return sorted(entry.model_version_policy.specific.versions)
  return []


def _serve_only(entry: model_server_config_pb2.ModelConfig, version: int) -> None:
  del entry.model_version_policy.specific.versions[:]
  entry.model_version_policy.specific.versions.append(version)
  entry.version_labels.clear()
  entry.version_labels[STABLE] = version


def _serves(entry: model_server_config_pb2.ModelConfig, version: int, on_disk) -> bool:
  policy = entry.model_version_policy
  choice = policy.WhichOneof('policy_choice')
  if choice == 'specific':
    return version in policy.specific.versions
  if choice == 'all':
    return True
  count = policy.latest.num_versions if choice == 'latest' and policy.latest.num_versions else 1
  return version in sorted(on_disk)[-count:]
