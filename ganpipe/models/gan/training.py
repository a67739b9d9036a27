"""The GAN's Trainer `run_fn`, training loop wiring and generator export."""

import hashlib
import json
import os
from typing import Optional, Sequence, Tuple

import absl.logging as logging
import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx.components.trainer import fn_args_utils

from ganpipe.models import features
from ganpipe.models import hparams
from ganpipe.models import preprocessing
from ganpipe.models import signatures
from ganpipe.models.gan import grid as grid_lib
from ganpipe.models.gan import model as model_lib
from ganpipe.models.training import inputs
from ganpipe.models.training import progress
from ganpipe.models.training import strategy as strategy_lib

SAMPLES_DIR = 'samples'
SAMPLE_SEED = 1234  # the fixed noise of the per-epoch sample grids


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the GAN on the transformed train split and exports the generator."""
  custom = fn_args.custom_config
  config = hparams.GanConfig(**custom['gan'])
  image_shape = tuple(custom[preprocessing.IMAGE_SHAPE])
  keras.utils.set_random_seed(custom['seed'])
  setup = strategy_lib.choose_training_setup()
  strategy_lib.log_setup(setup, config.batch_size)

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  dataset = inputs.make_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                                config.batch_size, num_epochs=None, seed=custom['seed'])
  dataset = dataset.map(lambda transformed, label: to_generator_range(
      transformed[features.IMAGE_KEY]))
  gan = train(config, image_shape, dataset, setup, run_dir=fn_args.model_run_dir,
              backup_dir=backup_dir_for(fn_args))
  export_generator(gan.generator, config.latent_dim, fn_args.serving_model_dir)


def to_generator_range(images: tf.Tensor) -> tf.Tensor:
  """[0, 1] pixels (Transform's output) -> [-1, 1], the range of the generator's tanh."""
  return images * 2.0 - 1.0


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
  return (images + 1.0) / 2.0


def backup_dir_for(fn_args: fn_args_utils.FnArgs) -> str:
  """A checkpoint folder that outlives a failed execution of the same training job.

  TFX gives every execution new output folders and deletes a failed one's, so the backup lives
  beside them, keyed by everything that defines the job: a re-run of the same job resumes, a
  different job starts afresh.
  """
  job = json.dumps({'config': fn_args.custom_config, 'train': fn_args.train_files,
                    'transform': fn_args.transform_output}, sort_keys=True)
  trainer_dir = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip('/')))
  return os.path.join(trainer_dir, 'backup', hashlib.sha256(job.encode()).hexdigest()[:16])


def build_gan(config: hparams.GanConfig, image_shape: Tuple[int, int, int],
              setup: strategy_lib.TrainingSetup) -> model_lib.GAN:
  """The compiled GAN; call inside `setup.strategy.scope()`."""
  architecture = model_lib.resolve_architecture(config.architecture, image_shape)
  generator = model_lib.build_generator(architecture, config.latent_dim, image_shape,
                                        synchronized=setup.replicas > 1)
  discriminator = model_lib.build_discriminator(
      architecture, image_shape, minibatch_stddev=config.minibatch_stddev_for(architecture),
      synchronized=setup.replicas > 1, dropout=config.discriminator_dropout)
  gan = model_lib.GAN(generator, discriminator, config.latent_dim, config.label_smoothing,
                      r1_gamma=config.r1_gamma)
  total_steps = config.epochs_for(architecture) * config.steps_per_epoch

  def optimizer(learning_rate, **ema):
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=total_steps, decay_rate=config.lr_decay)
    return setup.wrap_optimizer(keras.optimizers.Adam(schedule, beta_1=config.beta_1, **ema))

  # Keras' optimizer keeps the average in its own variables, updated after every step and saved
  # with its state (tf_keras/src/optimizers/optimizer.py, _update_model_variables_moving_average);
  # `train` writes it into the generator when training ends.
  ema = ({'use_ema': True, 'ema_momentum': config.ema_momentum(architecture)}
         if config.ema_horizon else {})
  gan.compile(d_optimizer=optimizer(config.discriminator_learning_rate_for(architecture)),
              g_optimizer=optimizer(config.generator_learning_rate_for(architecture), **ema),
              steps_per_execution=config.steps_per_execution)
  return gan


class SampleGrid(keras.callbacks.Callback):
  """Writes a PNG grid of samples from fixed noise, and a TensorBoard image, every epoch."""

  def __init__(self, run_dir: str, latent_dim: int, count: int = 64):
    super().__init__()
    self._dir = os.path.join(run_dir, SAMPLES_DIR)
    self._noise = tf.random.stateless_normal([count, latent_dim], seed=[SAMPLE_SEED, 0])
    self._writer = tf.summary.create_file_writer(self._dir)

  def on_epoch_end(self, epoch, logs=None):
    images = to_unit_range(self.model.generator(self._noise, training=False)).numpy()
    grid = grid_lib.make_grid(images)
    tf.io.gfile.makedirs(self._dir)
    path = os.path.join(self._dir, f'epoch_{epoch + 1:04d}.png')
    with tf.io.gfile.GFile(path, 'wb') as f:
      Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(f, 'PNG')
    with self._writer.as_default():
      tf.summary.image('samples', grid[np.newaxis], step=epoch + 1)


def train(config: hparams.GanConfig, image_shape: Tuple[int, int, int],
          dataset: tf.data.Dataset, setup: strategy_lib.TrainingSetup, run_dir: str,
          backup_dir: Optional[str] = None, verbose: Optional[int] = None,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> model_lib.GAN:
  """Builds and fits the GAN: `config.epochs_for` epochs of `config.steps_per_epoch` steps.

  With `backup_dir`, the state is saved every epoch and a re-run resumes from it; the backup is
  removed when training completes. `callbacks` are added to the standard ones. `verbose` is
  fit()'s; None draws a progress bar on a terminal and writes a line per epoch elsewhere.
  """
  if verbose is None:
    verbose = progress.keras_verbosity()
  with setup.strategy.scope():
    gan = build_gan(config, image_shape, setup)
  callbacks = [keras.callbacks.TensorBoard(log_dir=run_dir),
               SampleGrid(run_dir, config.latent_dim), *callbacks]
  if backup_dir:
    callbacks.insert(0, keras.callbacks.BackupAndRestore(backup_dir))
  logging.info('GAN: %s generator, %d parameters; discriminator %d parameters',
               gan.generator.name, gan.generator.count_params(),
               gan.discriminator.count_params())
  epochs = config.epochs_for(model_lib.resolve_architecture(config.architecture, image_shape))
  gan.fit(inputs.for_fit(dataset), epochs=epochs, steps_per_epoch=config.steps_per_epoch,
          callbacks=callbacks, verbose=verbose)
  if config.ema_horizon:
    # fit() finalises only `model.optimizer`; the GAN has two of its own.
    with setup.strategy.scope():
      optimizer = getattr(gan.g_optimizer, 'inner_optimizer', gan.g_optimizer)
      optimizer.finalize_variable_values(gan.generator.trainable_variables)
      recalibrate_batch_norm(gan.generator, config.latent_dim)
  return gan


def recalibrate_batch_norm(generator: keras.Model, latent_dim: int, count: int = 4096,
                           seed: int = SAMPLE_SEED) -> None:
  """Sets each batch normalisation's moving statistics to those of the generator's weights now.

  The moving mean and variance were gathered while the weights were the trained ones, not their
  average; as stochastic weight averaging does (torch.optim.swa_utils.update_bn), they are
  computed again for the averaged weights, here exactly, layer by layer in order, over `count`
  noise vectors, each layer's input computed with the statistics already set before it.
  """
  noise = tf.random.stateless_normal([count, latent_dim], seed=[seed, 1])
  for layer in generator.layers:
    if not isinstance(layer, keras.layers.BatchNormalization):
      continue
    inputs = keras.Model(generator.inputs, layer.input)(noise, training=False)
    axes = [axis for axis in range(len(inputs.shape)) if axis not in layer.axis]
    mean, variance = tf.nn.moments(tf.cast(inputs, tf.float32), axes)
    layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
    layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))


class GeneratorExport(tf.Module):
  """The exported generator, a reusable SavedModel. Its images are floats in [0, 1], NHWC.

  Besides the serving signatures it has the reusable SavedModel API that `hub.load` and
  `hub.KerasLayer` use (https://www.tensorflow.org/hub/reusable_saved_models): `__call__(noise,
  training=False)`, `variables`, `trainable_variables` and `regularization_losses`.
  """

  # tf.Module computes these as properties, which are not saved; the reusable SavedModel API
  # needs them as saved attributes, so they are plain attributes here.
  variables = None
  trainable_variables = None

  def __init__(self, generator: keras.Model, latent_dim: int):
    super().__init__(name='generator')
    self.generator = generator
    self.latent_dim = latent_dim
    self.variables = list(generator.variables)
    self.trainable_variables = list(generator.trainable_variables)
    # Reads the regularised weights when called, so it follows fine-tuning after loading.
    self.regularization_losses = [
        tf.function(lambda: tf.add_n(generator.losses), input_signature=[])
    ] if generator.losses else []
    noise_spec = tf.TensorSpec([None, latent_dim], tf.float32, name='noise')
    # The generator has batch normalisation, so both modes are saved: training=True normalises
    # with the batch's statistics and updates the moving ones, as fine-tuning needs.
    for training in (False, True):
      self.__call__.get_concrete_function(noise_spec, training=training)
    self.serve = tf.function(self._serve, input_signature=[noise_spec])
    self.generate = tf.function(
        self._generate, input_signature=[tf.TensorSpec([], tf.int32, name='num_images'),
                                         tf.TensorSpec([], tf.int64, name='seed')])

  @tf.function
  def __call__(self, noise, training=False):
    return self._images(noise, training)

  def _images(self, noise, training=False):
    return tf.cast(to_unit_range(self.generator(noise, training=training)), tf.float32)

  def _serve(self, noise):
    return {'images': self._images(noise)}

  def _generate(self, num_images, seed):
    tf.debugging.assert_positive(num_images, message='num_images must be positive')
    tf.debugging.assert_less_equal(
        num_images, signatures.MAX_GENERATED_IMAGES,
        message=f'num_images must be at most {signatures.MAX_GENERATED_IMAGES}; ask again for more')
    noise = tf.random.stateless_normal([num_images, self.latent_dim],
                                       seed=tf.stack([seed, tf.constant(0, tf.int64)]))
    images = self._images(noise)
    pixels = tf.image.convert_image_dtype(images, tf.uint8, saturate=True)
    png = tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.string)
    return {'images': images, signatures.PNG_OUTPUT: png}


def export_generator(generator: keras.Model, latent_dim: int, export_dir: str) -> None:
  """Saves the generator as a reusable SavedModel (see `GeneratorExport`).

  Signatures:
    serving_default: `noise` [batch, latent_dim] float32 -> `images` [batch, h, w, c] in [0, 1].
    generate: `num_images` int32 and `seed` int64 scalars -> `images` as above and `png_bytes`
      [num_images] encoded PNG bytes ({"b64": ...} in TF Serving's REST answers). The same seed
      always gives the same images. `num_images` outside 1..MAX_GENERATED_IMAGES is an
      InvalidArgumentError (INVALID_ARGUMENT when served).
  """
  module = GeneratorExport(unsynchronized(generator), latent_dim)
  tf.saved_model.save(module, export_dir, signatures={
      signatures.GENERATE_FROM_NOISE: module.serve,
      signatures.GENERATE: module.generate,
  })


def unsynchronized(model: keras.Model) -> keras.Model:
  """`model` with plain batch normalisation in place of the synchronised one, weights copied.

  Training synchronises batch normalisation across replicas through the replica context's
  all_reduce, a tf.custom_gradient whose gradient function a SavedModel cannot save, so every
  load warned once per saved function ("Importing a function ... with ops with unsaved custom
  gradients"): 18 times for `hub.load` of the dense generator. A saved model serves and is
  fine-tuned on one replica, where both kinds normalise alike.
  """
  def plain(layer):
    config = layer.get_config()
    if config.get('synchronized'):
      config['synchronized'] = False
    return layer.__class__.from_config(config)
  clone = keras.models.clone_model(model, clone_function=plain)
  clone.set_weights(model.get_weights())
  return clone
