"""Trains the GAN and the MLP a few steps under `choose_training_setup()`; saves the weights."""

# Run in a fresh process, once per worker with TF_CONFIG set by the parent (hence
# MultiWorkerMirroredStrategy) and once without it (the default strategy):
#   python -m tests.models.training.multi_worker_check --mode worker --model gan mlp --out DIR
# Each writes DIR/{model}.npz: initial and final weights, strategy name, replica count. All runs
# see the same global batches from the same weights, so they must end equal up to the order of
# floating-point sums. multi_worker_launcher.py starts the runs and compares them.

import argparse
import json
import os
import sys
import time

import numpy as np

import tensorflow as tf
import tf_keras as keras

from ganpipe.models.classifier import model as classifier_lib
from ganpipe.models.gan import model as gan_lib
from ganpipe.models.training import strategy as strategy_lib

MODELS = ('gan', 'mlp')
SHAPE, LATENT, CLASSES = (8, 8, 1), 8, 4
PIXELS = int(np.prod(SHAPE))
GLOBAL_BATCH, STEPS, LEARNING_RATE = 16, 3, 0.05
# Per-example noise projections for each of the GAN's two noise draws per step.
PROJECTIONS = np.random.default_rng(5).normal(size=(2, PIXELS, LATENT)).astype(np.float32)


def noise_fn(real, step):
  """Noise tied to each example, so it does not depend on which worker draws it."""
  return tf.tanh(tf.reshape(real, [-1, PIXELS]) @ tf.constant(PROJECTIONS[step]))


def examples(model: str):
  """`STEPS` global batches of fixed data, laid out example after example."""
  rng = np.random.default_rng(7)
  count = STEPS * GLOBAL_BATCH
  if model == 'gan':
    return (rng.uniform(-1, 1, (count, *SHAPE)).astype(np.float32),)
  return (rng.uniform(0, 1, (count, *SHAPE)).astype(np.float32),
          rng.integers(0, CLASSES, count).astype(np.int64))


def dataset_fn(model: str):
  """Input pipeline `i` of `n` gets the i-th n-th of every global batch, in order.

  The sharding is done here rather than by tf.data's auto-sharding, so which examples each
  worker sees is explicit; the global batches are the same whatever the number of workers.
  """

  def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
    per_pipeline = GLOBAL_BATCH // context.num_input_pipelines
    first = context.input_pipeline_id * per_pipeline
    part = tuple(
        array.reshape(STEPS, GLOBAL_BATCH, *array.shape[1:])[:, first:first + per_pipeline]
        .reshape(STEPS * per_pipeline, *array.shape[1:]) for array in examples(model))
    dataset = tf.data.Dataset.from_tensor_slices(part if len(part) > 1 else part[0])
    dataset = dataset.batch(context.get_per_replica_batch_size(GLOBAL_BATCH))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)

  return make


def build(model: str) -> keras.Model:
  """The compiled model; call inside the strategy's scope.

  Trained with SGD, not Adam: Adam divides each gradient by its own running magnitude, so a
  gradient off by a constant factor (a loss averaged over the local instead of the global batch)
  would move the weights just the same and go unnoticed.
  """
  if model == 'gan':
    gan = gan_lib.GAN(gan_lib.build_generator('dense', LATENT, SHAPE),
                      gan_lib.build_discriminator('dense', SHAPE), LATENT, 0.1,
                      noise_fn=noise_fn)
    gan.compile(d_optimizer=keras.optimizers.SGD(LEARNING_RATE),
                g_optimizer=keras.optimizers.SGD(LEARNING_RATE))
    return gan
  # No dropout and no input noise: their random masks would differ between the runs.
  mlp = classifier_lib.build_classifier(SHAPE, CLASSES, (32, 16), dropout=0.0, input_noise=0.0)
  classifier_lib.compile_classifier(mlp, 'sgd', LEARNING_RATE)
  return mlp


def initial_weights(weights):
  """Glorot-uniform kernels from a fixed NumPy seed; vectors (biases, BN) keep their constants.

  Drawn with NumPy rather than TensorFlow's initialisers so every process gets the same values
  without relying on TensorFlow's seeding across processes and strategies.
  """
  rng = np.random.default_rng(0)
  initial = []
  for weight in weights:
    if weight.ndim >= 2:
      limit = np.sqrt(6.0 / (np.prod(weight.shape[:-1]) + weight.shape[-1]))
      weight = rng.uniform(-limit, limit, weight.shape).astype(weight.dtype)
    initial.append(weight)
  return initial


def train(model: str, setup: strategy_lib.TrainingSetup, eager: bool):
  """(initial weights, final weights) after `STEPS` steps of `fit()`."""
  with setup.strategy.scope():
    network = build(model)
  network.run_eagerly = eager
  # The GAN's own weights would include its loss trackers, which are metrics, not the model.
  parts = [network.generator, network.discriminator] if model == 'gan' else [network]
  initial = initial_weights([w for part in parts for w in part.get_weights()])
  values = iter(initial)
  for part in parts:
    part.set_weights([next(values) for _ in part.weights])
  dataset = setup.strategy.distribute_datasets_from_function(dataset_fn(model))
  network.fit(dataset, epochs=1, steps_per_epoch=STEPS, verbose=0)
  return initial, [w for part in parts for w in part.get_weights()]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--mode', choices=('single', 'worker'), required=True)
  parser.add_argument('--model', choices=MODELS, nargs='+', required=True)
  parser.add_argument('--out', required=True, help='folder for {model}.npz')
  # Eager steps do the same all-reduce, synchronised batch norm and global-batch loss averaging;
  # tracing train_step costs ten times the CPU of 3 eager steps of these small models.
  parser.add_argument('--eager', action='store_true', help='run train_step eagerly')
  args = parser.parse_args(argv)
  if (args.mode == 'worker') != bool(os.environ.get('TF_CONFIG')):
    parser.error('--mode worker needs TF_CONFIG, and --mode single must run without it')

  # Before any TensorFlow op: MultiWorkerMirroredStrategy must configure collectives first.
  setup = strategy_lib.choose_training_setup()
  tf.config.experimental.enable_op_determinism()
  strategy_lib.log_setup(setup, GLOBAL_BATCH)
  os.makedirs(args.out, exist_ok=True)
  for model in args.model:
    started, cpu = time.monotonic(), time.process_time()
    initial, final = train(model, setup, args.eager)
    # On stderr, so a timed-out run's report shows how far each process got.
    print(f'trained {model} for {STEPS} steps in {time.monotonic() - started:.1f} s '
          f'({time.process_time() - cpu:.1f} s CPU)', file=sys.stderr, flush=True)
    arrays = {f'initial_{i:03d}': w for i, w in enumerate(initial)}
    arrays.update({f'final_{i:03d}': w for i, w in enumerate(final)})
    np.savez(os.path.join(args.out, f'{model}.npz'), strategy=type(setup.strategy).__name__,
             multi_worker=isinstance(setup.strategy, tf.distribute.MultiWorkerMirroredStrategy),
             replicas=setup.replicas, global_batch=GLOBAL_BATCH, steps=STEPS,
             learning_rate=LEARNING_RATE, **arrays)
  print(json.dumps({'mode': args.mode, 'models': args.model,
                    'strategy': type(setup.strategy).__name__, 'replicas': setup.replicas}),
        flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
