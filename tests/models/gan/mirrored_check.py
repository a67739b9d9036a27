"""One GAN train_step on one device and under MirroredStrategy over two virtual CPU devices.

Run as a script, in a fresh process: the CPU must be split into logical devices before
TensorFlow initialises. Prints the largest absolute weight difference as JSON.
"""

import json
import sys

import numpy as np

import tensorflow as tf

CPU = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    CPU, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import tf_keras as keras  # noqa: E402

from ganpipe.models.gan import model as model_lib  # noqa: E402
from ganpipe.models.gan import training  # noqa: E402
from ganpipe.models.training import strategy as strategy_lib  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402

SHAPE, LATENT, BATCH = (8, 8, 1), 8, 16
PIXELS = int(np.prod(SHAPE))
PROJECTIONS = tf.constant(np.random.default_rng(5).normal(size=(2, PIXELS, LATENT)), tf.float32)


def noise_fn(real, step):
  """Noise tied to each example, so splitting the batch over replicas does not change it."""
  return tf.tanh(tf.reshape(real, [-1, PIXELS]) @ PROJECTIONS[step])


def build(initial=None, architecture='dense', **discriminator_args):
  gan = model_lib.GAN(model_lib.build_generator(architecture, LATENT, SHAPE),
                      model_lib.build_discriminator(architecture, SHAPE, **discriminator_args),
                      LATENT, 0.1, noise_fn=noise_fn)
  gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
  if initial is not None:
    gan.generator.set_weights(initial[0])
    gan.discriminator.set_weights(initial[1])
  return gan


def one_step(gan):
  images = np.random.default_rng(6).uniform(-1, 1, (BATCH, *SHAPE)).astype(np.float32)
  gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(BATCH), epochs=1, verbose=0)
  return gan.generator.get_weights() + gan.discriminator.get_weights()


def largest_difference(weights, other_weights):
  return max(float(np.max(np.abs(a - b))) for a, b in zip(weights, other_weights))


def single_and_mirrored(strategy, mirrored_args=None, **args):
  """The weights after one step on one device and over the strategy's replicas, and before."""
  keras.utils.set_random_seed(0)
  single = build(**args)
  initial = (single.generator.get_weights(), single.discriminator.get_weights())
  single_weights = one_step(single)
  with strategy.scope():
    mirrored = build(initial, **(mirrored_args or args))
  return single_weights, one_step(mirrored), initial[0] + initial[1]


def main():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  single_weights, mirrored_weights, initial = single_and_mirrored(strategy)
  figures = {'replicas': strategy.num_replicas_in_sync,
             'max_abs_difference': largest_difference(single_weights, mirrored_weights),
             'max_abs_update': largest_difference(single_weights, initial)}
  # With the minibatch standard deviation, whose statistic is of the whole batch: synchronised
  # as under the Trainer, and (the control) each replica's own. On the dense GAN: the DCGAN's
  # discriminator has dropout, whose masks differ between the two runs.
  stddev = dict(minibatch_stddev=True)
  single_weights, mirrored_weights, initial = single_and_mirrored(strategy, **stddev)
  figures['stddev_max_abs_difference'] = largest_difference(single_weights, mirrored_weights)
  figures['stddev_max_abs_update'] = largest_difference(single_weights, initial)
  single_weights, mirrored_weights, _ = single_and_mirrored(
      strategy, mirrored_args=dict(stddev, synchronized=False), **stddev)
  figures['unsynchronized_stddev_max_abs_difference'] = largest_difference(single_weights,
                                                                           mirrored_weights)
  setup = strategy_lib.TrainingSetup(strategy, False, ['/cpu:0', '/cpu:1'])
  with strategy.scope():
    trainer_gan = training.build_gan(
        config_lib.GanConfig(architecture='dcgan', latent_dim=LATENT, minibatch_stddev=True),
        (8, 8, 1), setup)
  layers = trainer_gan.generator.layers + trainer_gan.discriminator.layers
  figures['build_gan_synchronized'] = [
      layer.synchronized for layer in layers
      if isinstance(layer, (keras.layers.BatchNormalization, model_lib.MinibatchStddev))]
  json.dump(figures, sys.stdout)


if __name__ == '__main__':
  main()
