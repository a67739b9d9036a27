"""The steps of `ganpipe rollout` on a serving root: each one atomic rewrite of models.config."""

import dataclasses
import os
from typing import Dict, Iterable, List, Optional

import tensorflow as tf

from ganpipe.components import versioning
from ganpipe.components.serving_pusher import publishing
from ganpipe.components.serving_pusher import rollout


@dataclasses.dataclass(frozen=True)
class StepResult:
  """What a step did: the rollout before it, labels added, versions deleted, the config file."""
  before: rollout.Rollout
  after: rollout.Rollout
  labelled: Dict[str, int]
  deleted: List[int]
  config_path: Optional[str]


def current(serving_root: str, name: str) -> rollout.Rollout:
  """The model's rollout as models.config and the versions on disk say."""
  entry = rollout.model_entry(rollout.read_existing_config(serving_root), name)
  return rollout.state(entry, versioning.versions(_base_path(serving_root, name)))


def label(serving_root: str, name: str, available: Iterable[int]) -> StepResult:
  """Puts `stable` and `canary` on their versions that the server has AVAILABLE.

  Writes nothing when no label changes (a server polling the file sees no change either).
  """
  return _edit(serving_root, name, lambda entry, on_disk: rollout.label(entry, on_disk,
                                                                         available))


def promote(serving_root: str, name: str, available: Iterable[int]) -> StepResult:
  """`stable` moves onto the canary, the only version served.

  The old version's folder stays until `retain` runs: a server that has not read the new config
  yet still serves `stable` from it.
  """
  def change(entry, on_disk):
    rollout.promote(entry, on_disk, available)
  return _edit(serving_root, name, change)


def retain(serving_root: str, name: str, keep: int) -> List[int]:
  """The retention rule: deletes all but the `keep` newest versions and those the config serves;
  returns the deleted ones."""
  entry = rollout.model_entry(rollout.read_existing_config(serving_root), name)
  return publishing.retain_latest(_base_path(serving_root, name), keep,
                                  rollout.served_versions(entry))


def rollback(serving_root: str, name: str) -> StepResult:
  """Serves the stable version alone again, then deletes the canary's folder.

  The folder goes after the config stops naming it, so the server is never asked to serve a
  version that is not there; deleting it keeps a rejected model from ever serving again (as
  the newest version, under a later direct push's `latest` policy).
  """
  def change(entry, on_disk):
    rollout.rollback(entry, on_disk)
  result = _edit(serving_root, name, change)
  path = os.path.join(_base_path(serving_root, name), str(result.before.canary))
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
  return dataclasses.replace(result, deleted=[result.before.canary])


def _edit(serving_root: str, name: str, change) -> StepResult:
  with rollout.config_lock(serving_root):
    config = rollout.read_existing_config(serving_root)
    entry = rollout.model_entry(config, name)
    on_disk = versioning.versions(_base_path(serving_root, name))
    before = rollout.state(entry, on_disk)
    unchanged = config.SerializeToString(deterministic=True)
    labelled = change(entry, on_disk) or {}
    path = None
    if config.SerializeToString(deterministic=True) != unchanged:
      path = rollout.write_config(serving_root, config)
  return StepResult(before, rollout.state(entry, on_disk), labelled, [], path)


def _base_path(serving_root: str, name: str) -> str:
  return os.path.join(serving_root, name)
