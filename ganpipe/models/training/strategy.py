"""The one place that picks a tf.distribute strategy and precision for both trainers."""

import dataclasses
import json
import os
from typing import List

import absl.logging as logging
import tensorflow as tf
import tf_keras as keras


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
  strategy: tf.distribute.Strategy
  mixed_precision: bool
  devices: List[str]

  @property
  def replicas(self) -> int:
    return self.strategy.num_replicas_in_sync

  def wrap_optimizer(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Adds dynamic loss scaling when training in mixed precision."""
    if self.mixed_precision:
      return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer

  def describe(self, global_batch: int) -> str:
    return (f'{type(self.strategy).__name__} over {len(self.devices)} device(s) '
            f'[{", ".join(self.devices)}], {self.replicas} replica(s), global batch '
            f'{global_batch} ({global_batch // max(self.replicas, 1)} per replica), '
            f'{"mixed_float16" if self.mixed_precision else "float32"}')


def _tf_config_workers() -> int:
  config = json.loads(os.environ.get('TF_CONFIG') or '{}')
  cluster = config.get('cluster', {})
  return len(cluster.get('worker', [])) + len(cluster.get('chief', []))


def choose_training_setup() -> TrainingSetup:
  """MultiWorkerMirroredStrategy when TF_CONFIG names several workers; MirroredStrategy over
  local GPUs; otherwise the default strategy. GPUs train in mixed_float16.

  Must run before any model is built: it sets Keras' global dtype policy.
  """
  gpus = tf.config.list_physical_devices('GPU')
  if _tf_config_workers() > 1:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif gpus:
    strategy = tf.distribute.MirroredStrategy()
  else:
    strategy = tf.distribute.get_strategy()
  mixed = bool(gpus)
  keras.mixed_precision.set_global_policy('mixed_float16' if mixed else 'float32')
  if isinstance(strategy, (tf.distribute.MirroredStrategy,
                           tf.distribute.MultiWorkerMirroredStrategy)):
    devices = list(strategy.extended.worker_devices)
  else:
    devices = [d.name for d in tf.config.list_logical_devices('CPU')[:1]]
  return TrainingSetup(strategy, mixed, devices)


def log_setup(setup: TrainingSetup, global_batch: int) -> None:
  logging.info('Training with %s', setup.describe(global_batch))
  print(f'    training with {setup.describe(global_batch)}', flush=True)
