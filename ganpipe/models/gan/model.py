"""The GAN: generator and discriminator builders, the losses, and a keras.Model with train_step.

The generator maps noise z to an image G(z) in [-1, 1] (tanh); the discriminator maps an image
to one logit, real vs fake. Both are trained with binary cross-entropy on logits, the generator
with the non-saturating loss, in alternating updates with separate optimizers. Under a strategy
with several replicas, batch normalisation is synchronised across them, so a step over N devices
updates the weights as one step over the same global batch on one device.
"""

import functools
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from ganpipe.models import hparams

DENSE = hparams.DENSE
DCGAN = hparams.DCGAN


# The rule lives with the hyperparameters, where the configuration checks it before TF loads.
resolve_architecture = hparams.resolve_architecture


def build_generator(architecture: str, latent_dim: int, image_shape: Tuple[int, int, int],
                    synchronized: Optional[bool] = None) -> keras.Model:
  """noise [batch, latent_dim] -> images [batch, h, w, c] in [-1, 1].

  Args:
    architecture: DENSE or DCGAN.
    latent_dim: the noise size.
    image_shape: (height, width, channels).
    synchronized: whether batch normalisation all-reduces its statistics across replicas; None
      (the default) synchronises when the strategy in scope has more than one replica.
  """
  builders = {DENSE: _dense_generator, DCGAN: _dcgan_generator}
  if architecture not in builders:
    raise ValueError(f'unknown GAN architecture {architecture!r}; expected one of '
                     f'{", ".join(hparams.GAN_ARCHITECTURES)}')
  if synchronized is None:
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
  return builders[architecture](latent_dim, image_shape, synchronized)


def _batch_norm(synchronized: bool) -> keras.layers.Layer:
  """Synchronised batch normalisation only where there is something to synchronise with.

  tf_keras never fuses a synchronised layer (`fused = False` when `synchronized`, in
  tf_keras/src/layers/normalization/batch_normalization.py, BatchNormalizationBase.__init__),
  and its `_sync_calculate_mean_and_var` all-reduces three tensors through the replica context
  even with one replica. On one device the plain layer computes the same statistics, and the
  convolutional ones run as one FusedBatchNormV3 (and its gradient) instead of a chain of ops:
  2-9% less CPU per image for the 32x32x3 DCGAN on 2 CPUs (issue 27).
  """
  return keras.layers.BatchNormalization(synchronized=synchronized)


class MinibatchStddev(keras.layers.Layer):
  """Appends one channel: the batch's standard deviation, averaged over every feature.

  The minibatch standard deviation of Karras et al., "Progressive Growing of GANs" (ICLR 2018),
  with one group: the discriminator sees how varied the batch is, so a generator that collapses
  to a few images is told apart from the data. The statistic is of the whole batch, so with
  `synchronized` it is of the global batch: the sums behind it are all-reduced across the
  replicas, as synchronised batch normalisation does, and a step over N devices stays one step
  over the global batch.
  """

  def __init__(self, synchronized: bool = False, epsilon: float = 1e-8, **kwargs):
    super().__init__(**kwargs)
    self.synchronized = synchronized
    self.epsilon = epsilon

  def _global_sum(self, value: tf.Tensor) -> tf.Tensor:
    context = tf.distribute.get_replica_context()
    if self.synchronized and context is not None and context.num_replicas_in_sync > 1:
      return context.all_reduce(tf.distribute.ReduceOp.SUM, value)
    return value

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    x = tf.cast(inputs, tf.float32)
    count = self._global_sum(tf.cast(tf.shape(x)[0], tf.float32))
    mean = self._global_sum(tf.reduce_sum(x, axis=0)) / count
    variance = self._global_sum(tf.reduce_sum(tf.square(x - mean), axis=0)) / count
    stddev = tf.reduce_mean(tf.sqrt(variance + self.epsilon))
    feature = tf.cast(tf.ones_like(x[..., :1]) * stddev, inputs.dtype)
    return tf.concat([inputs, feature], axis=-1)

  def compute_output_shape(self, input_shape):
    return tf.TensorShape(input_shape)[:-1].concatenate([tf.TensorShape(input_shape)[-1] + 1])

  def get_config(self):
    return {**super().get_config(), 'synchronized': self.synchronized, 'epsilon': self.epsilon}


def build_discriminator(architecture: str, image_shape: Tuple[int, int, int],
                        minibatch_stddev: bool = False,
                        synchronized: Optional[bool] = None,
                        dropout: float = 0.3) -> keras.Model:
  """images [batch, h, w, c] in [-1, 1] -> one real-vs-fake logit [batch, 1].

  Args:
    architecture: DENSE or DCGAN.
    image_shape: (height, width, channels).
    minibatch_stddev: whether the last hidden features get a MinibatchStddev channel.
    synchronized: whether that statistic is of the global batch across replicas; None (the
      default) synchronises when the strategy in scope has more than one replica.
    dropout: the DCGAN's dropout rate before its logit; 0 leaves the layer out. The dense
      discriminator has none.
  """
  builders = {DENSE: _dense_discriminator,
              DCGAN: functools.partial(_dcgan_discriminator, dropout=dropout)}
  if architecture not in builders:
    raise ValueError(f'unknown GAN architecture {architecture!r}; expected one of '
                     f'{", ".join(hparams.GAN_ARCHITECTURES)}')
  if synchronized is None:
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
  stddev = MinibatchStddev(synchronized) if minibatch_stddev else None
  return builders[architecture](image_shape, stddev)


def _dense_generator(latent_dim, image_shape, synchronized):
  pixels = image_shape[0] * image_shape[1] * image_shape[2]
  noise = keras.Input((latent_dim,), name='noise')
  x = noise
  for units in (256, 512):
    x = keras.layers.Dense(units, use_bias=False)(x)
    x = _batch_norm(synchronized)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
  x = keras.layers.Dense(pixels, activation='tanh', dtype='float32')(x)
  images = keras.layers.Reshape(image_shape, name='images')(x)
  return keras.Model(noise, images, name='dense_generator')


def _dense_discriminator(image_shape, stddev):
  images = keras.Input(image_shape, name='images')
  x = keras.layers.Flatten()(images)
  for units in (512, 256):
    x = keras.layers.Dense(units)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
  if stddev is not None:
    x = stddev(x)
  logits = keras.layers.Dense(1, dtype='float32', name='logits')(x)
  return keras.Model(images, logits, name='dense_discriminator')


def _check_dcgan_shape(image_shape):
  """The configuration refuses these sizes first (hparams.check_gan_image_shape)."""
  height, width, _ = image_shape
  multiple = hparams.DCGAN_SIDE_MULTIPLE
  if height % multiple or width % multiple:
    raise ValueError(f'the DCGAN upsamples twice by 2, so height and width must be multiples '
                     f'of {multiple}; got {height}x{width}. Resize the images to a multiple of '
                     f'{multiple} with --data.image_size')


def _dcgan_generator(latent_dim, image_shape, synchronized):
  _check_dcgan_shape(image_shape)
  height, width, channels = image_shape
  noise = keras.Input((latent_dim,), name='noise')
  x = keras.layers.Dense((height // 4) * (width // 4) * 128, use_bias=False)(noise)
  x = _batch_norm(synchronized)(x)
  x = keras.layers.LeakyReLU(0.2)(x)
  x = keras.layers.Reshape((height // 4, width // 4, 128))(x)
  for filters in (128, 64):
    x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding='same', use_bias=False)(x)
    x = _batch_norm(synchronized)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
  images = keras.layers.Conv2D(channels, 5, padding='same', activation='tanh', dtype='float32',
                               name='images')(x)
  return keras.Model(noise, images, name='dcgan_generator')


def _dcgan_discriminator(image_shape, stddev, dropout):
  _check_dcgan_shape(image_shape)
  images = keras.Input(image_shape, name='images')
  x = images
  for filters in (64, 128):
    x = keras.layers.Conv2D(filters, 4, strides=2, padding='same')(x)
    x = keras.layers.LeakyReLU(0.2)(x)
  if stddev is not None:
    x = stddev(x)
  x = keras.layers.Flatten()(x)
  if dropout:
    x = keras.layers.Dropout(dropout)(x)
  logits = keras.layers.Dense(1, dtype='float32', name='logits')(x)
  return keras.Model(images, logits, name='dcgan_discriminator')


def discriminator_losses(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                         label_smoothing: float = 0.0) -> tf.Tensor:
  """Per-example discriminator loss: BCE(real -> 1 - smoothing) + BCE(fake -> 0).

  One-sided label smoothing softens only the real targets, so the discriminator is never
  rewarded for calling fakes partly real.
  """
  real_targets = tf.fill(tf.shape(real_logits), 1.0 - label_smoothing)
  real = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_targets, logits=real_logits)
  fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits),
                                                 logits=fake_logits)
  return tf.reduce_mean(real, axis=-1) + tf.reduce_mean(fake, axis=-1)


def r1_penalties(discriminator: keras.Model, real: tf.Tensor, gamma: float):
  """The real logits, and gamma / 2 x |grad_x D(x)|^2 for each real image x (R1).

  Mescheder et al., "Which Training Methods for GANs do actually Converge?" (ICML 2018): the
  penalty on the discriminator's gradient at the data keeps it from growing steep where the
  generator has not yet reached, without the fixed targets of label smoothing or noise.
  Returns (logits [batch, 1], penalties [batch]).
  """
  with tf.GradientTape() as tape:
    tape.watch(real)
    logits = discriminator(real, training=True)
    total = tf.reduce_sum(tf.cast(logits, tf.float32))
  gradients = tf.cast(tape.gradient(total, real), tf.float32)
  norms = tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients)))
  return logits, 0.5 * gamma * norms


def generator_losses(fake_logits: tf.Tensor) -> tf.Tensor:
  """Per-example non-saturating generator loss: BCE(fake -> 1), i.e. -log D(G(z))."""
  loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits),
                                                 logits=fake_logits)
  return tf.reduce_mean(loss, axis=-1)


class GAN(keras.Model):
  """Trains `generator` and `discriminator` against each other with `fit()`.

  Each `train_step` updates the discriminator on a real batch and a generated batch, then the
  generator on a fresh generated batch, each with its own GradientTape and optimizer. Losses are
  averaged over the global batch, so the step is right under any tf.distribute strategy, and
  loss-scaling optimizers (mixed precision) are honoured.
  """

  def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
               label_smoothing: float = 0.0, r1_gamma: float = 0.0,
               noise_fn: Optional[Callable[[tf.Tensor, int], tf.Tensor]] = None, **kwargs):
    """Wires the two networks together.

    Args:
      generator: noise -> images in [-1, 1].
      discriminator: images -> one logit.
      latent_dim: the noise size.
      label_smoothing: one-sided smoothing of the real targets.
      r1_gamma: the weight of the R1 penalty on the real images (r1_penalties); 0 disables it.
      noise_fn: (real batch, 0 for the discriminator step or 1 for the generator step) ->
        noise; standard normal noise when None. Tests pass a deterministic one.
    """
    super().__init__(**kwargs)
    self.generator = generator
    self.discriminator = discriminator
    self.latent_dim = latent_dim
    self.label_smoothing = label_smoothing
    self.r1_gamma = r1_gamma
    self.noise_fn = noise_fn
    self.d_loss_tracker = keras.metrics.Mean(name='d_loss')
    self.g_loss_tracker = keras.metrics.Mean(name='g_loss')

  def compile(self, d_optimizer: keras.optimizers.Optimizer,
              g_optimizer: keras.optimizers.Optimizer, **kwargs):
    super().compile(**kwargs)
    self.d_optimizer = d_optimizer
    self.g_optimizer = g_optimizer

  @property
  def metrics(self):
    return [self.d_loss_tracker, self.g_loss_tracker]

  def call(self, noise, training=False):
    return self.generator(noise, training=training)

  def _noise(self, real: tf.Tensor, step: int) -> tf.Tensor:
    if self.noise_fn is not None:
      return self.noise_fn(real, step)
    return tf.random.normal([tf.shape(real)[0], self.latent_dim])

  def _global_mean(self, per_example: tf.Tensor) -> tf.Tensor:
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    global_batch = tf.shape(per_example)[0] * replicas
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

  @staticmethod
  def _apply(optimizer, tape, loss, variables):
    scaled = optimizer.get_scaled_loss(loss) if hasattr(optimizer, 'get_scaled_loss') else loss
    gradients = tape.gradient(scaled, variables)
    if hasattr(optimizer, 'get_unscaled_gradients'):
      gradients = optimizer.get_unscaled_gradients(gradients)
    optimizer.apply_gradients(zip(gradients, variables))

  def train_step(self, data) -> Dict[str, tf.Tensor]:
    real = data[0] if isinstance(data, tuple) else data

    noise = self._noise(real, 0)
    with tf.GradientTape() as tape:
      fake = self.generator(noise, training=True)
      if self.r1_gamma:
        real_logits, penalties = r1_penalties(self.discriminator, real, self.r1_gamma)
      else:
        real_logits, penalties = self.discriminator(real, training=True), 0.0
      fake_logits = self.discriminator(fake, training=True)
      d_per_example = discriminator_losses(tf.cast(real_logits, tf.float32),
                                           tf.cast(fake_logits, tf.float32),
                                           self.label_smoothing) + penalties
      d_loss = self._global_mean(d_per_example)
    self._apply(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)

    noise = self._noise(real, 1)
    with tf.GradientTape() as tape:
      fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
      g_per_example = generator_losses(tf.cast(fake_logits, tf.float32))
      g_loss = self._global_mean(g_per_example)
    self._apply(self.g_optimizer, tape, g_loss, self.generator.trainable_variables)

    self.d_loss_tracker.update_state(d_per_example)
    self.g_loss_tracker.update_state(g_per_example)
    return {m.name: m.result() for m in self.metrics}
