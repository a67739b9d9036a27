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


def build(initial=None):
  gan = model_lib.GAN(model_lib.build_generator('dense', LATENT, SHAPE),
                      model_lib.build_discriminator('dense', SHAPE), LATENT, 0.1,
                      noise_fn=noise_fn)
  gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
  if initial is not None:
    gan.generator.set_weights(initial[0])
    gan.discriminator.set_weights(initial[1])
  return gan


def one_step(gan):
  images = np.random.default_rng(6).uniform(-1, 1, (BATCH, *SHAPE)).astype(np.float32)
  gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(BATCH), epochs=1, verbose=0)
  return gan.generator.get_weights() + gan.discriminator.get_weights()


def main():
  keras.utils.set_random_seed(0)
  single = build()
  initial = (single.generator.get_weights(), single.discriminator.get_weights())
  single_weights = one_step(single)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    mirrored = build(initial)
  mirrored_weights = one_step(mirrored)
  moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights,
                                                            initial[0] + initial[1]))
  difference = max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights,
                                                                 mirrored_weights))
  setup = strategy_lib.TrainingSetup(strategy, False, ['/cpu:0', '/cpu:1'])
  with strategy.scope():
    trainer_gan = training.build_gan(config_lib.GanConfig(architecture='dcgan', latent_dim=LATENT),
                                     (8, 8, 1), setup)
  synchronized = [layer.synchronized for layer in trainer_gan.generator.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]
  json.dump({'replicas': strategy.num_replicas_in_sync, 'max_abs_difference': difference,
             'max_abs_update': moved, 'build_gan_synchronized': synchronized}, sys.stdout)


if __name__ == '__main__':
  main()
