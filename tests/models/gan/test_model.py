"""The GAN: builders at each image shape, the loss formulas and one training step."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from ganpipe.models.gan import model as model_lib

LATENT = 16


# Parameter counts, worked out layer by layer (BatchNorm has 4 values per unit, 2 trainable).
def _dense_generator_params(latent, pixels):
  return (latent * 256 + 4 * 256) + (256 * 512 + 4 * 512) + (512 * pixels + pixels)


def _dense_discriminator_params(pixels):
  return (pixels * 512 + 512) + (512 * 256 + 256) + (256 + 1)


def _dcgan_generator_params(latent, h, w, c):
  start = (h // 4) * (w // 4) * 128
  return ((latent * start + 4 * start)
          + (4 * 4 * 128 * 128 + 4 * 128)
          + (4 * 4 * 128 * 64 + 4 * 64)
          + (5 * 5 * 64 * c + c))


def _dcgan_discriminator_params(h, w, c):
  flat = (h // 4) * (w // 4) * 128
  return (4 * 4 * c * 64 + 64) + (4 * 4 * 64 * 128 + 128) + (flat + 1)


SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3)]


@pytest.mark.parametrize('shape', SHAPES)
def test_dense_gan_shapes_and_parameter_counts(shape):
  pixels = math.prod(shape)
  generator = model_lib.build_generator('dense', LATENT, shape)
  discriminator = model_lib.build_discriminator('dense', shape)
  assert generator.output_shape == (None, *shape)
  assert discriminator.output_shape == (None, 1)
  assert generator.count_params() == _dense_generator_params(LATENT, pixels)
  assert discriminator.count_params() == _dense_discriminator_params(pixels)



@pytest.mark.parametrize('architecture', ['dense', 'dcgan'])
def test_batch_norm_synchronises_only_when_asked_or_over_several_replicas(architecture):
  def synchronized(**kwargs):
    generator = model_lib.build_generator(architecture, LATENT, (16, 16, 1), **kwargs)
    return {layer.synchronized for layer in generator.layers
            if isinstance(layer, keras.layers.BatchNormalization)}

  assert synchronized() == {False}  # the default strategy: one replica
  assert synchronized(synchronized=True) == {True}
  assert synchronized(synchronized=False) == {False}

@pytest.mark.parametrize('shape', SHAPES)
def test_dcgan_shapes_and_parameter_counts(shape):
  generator = model_lib.build_generator('dcgan', LATENT, shape)
  discriminator = model_lib.build_discriminator('dcgan', shape)
  assert generator.output_shape == (None, *shape)
  assert discriminator.output_shape == (None, 1)
  assert generator.count_params() == _dcgan_generator_params(LATENT, *shape)
  assert discriminator.count_params() == _dcgan_discriminator_params(*shape)


@pytest.mark.parametrize('architecture, extra', [
    # One more input to the logit: the dense features gain one, the DCGAN's a channel.
    ('dense', lambda h, w, c: 1), ('dcgan', lambda h, w, c: (h // 4) * (w // 4))])
def test_the_minibatch_stddev_adds_one_feature_and_no_weights(architecture, extra):
  shape = (16, 16, 3)
  plain = model_lib.build_discriminator(architecture, shape)
  with_stddev = model_lib.build_discriminator(architecture, shape, minibatch_stddev=True)
  assert with_stddev.count_params() == plain.count_params() + extra(*shape)
  assert with_stddev.output_shape == (None, 1)


@pytest.mark.parametrize('shape', [(6, 5), (6, 3, 4, 2)])
def test_the_minibatch_stddev_is_the_batch_std_averaged_over_features(shape):
  x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
  out = model_lib.MinibatchStddev()(x).numpy()
  assert out.shape == (*shape[:-1], shape[-1] + 1)
  np.testing.assert_array_equal(out[..., :-1], x)  # the features pass through
  expected = np.mean(np.sqrt(np.var(x, axis=0) + 1e-8))  # population variance, all features
  np.testing.assert_allclose(out[..., -1], np.full(shape[:-1], expected), rtol=1e-5)


def test_the_minibatch_stddev_of_identical_examples_is_finite_with_finite_gradients():
  x = tf.ones([4, 3, 3, 2])
  with tf.GradientTape() as tape:
    tape.watch(x)
    out = model_lib.MinibatchStddev()(x)
    feature = out[..., -1]
  gradient = tape.gradient(feature, x).numpy()
  assert np.all(np.isfinite(gradient))
  np.testing.assert_allclose(feature.numpy(), 1e-4, rtol=1e-3)  # sqrt(epsilon)


def test_generator_output_is_in_tanh_range():
  generator = model_lib.build_generator('dcgan', LATENT, (8, 8, 1))
  images = generator(tf.random.normal([4, LATENT]) * 10.0).numpy()
  assert images.min() >= -1.0 and images.max() <= 1.0


def test_dcgan_needs_multiples_of_four():
  with pytest.raises(ValueError, match='multiples of 4; got 30x30'):
    model_lib.build_generator('dcgan', LATENT, (30, 30, 1))


def test_auto_architecture():
  assert model_lib.resolve_architecture('auto', (8, 8, 1)) == 'dense'
  assert model_lib.resolve_architecture('auto', (28, 28, 1)) == 'dcgan'
  assert model_lib.resolve_architecture('dense', (28, 28, 1)) == 'dense'
  with pytest.raises(ValueError, match="unknown GAN architecture 'vae'"):
    model_lib.build_generator('vae', LATENT, (8, 8, 1))


def _bce(label, logit):
  p = 1.0 / (1.0 + math.exp(-logit))
  return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_discriminator_loss_on_hand_picked_logits():
  real = tf.constant([[2.0], [0.0]])
  fake = tf.constant([[-1.0], [3.0]])
  got = model_lib.discriminator_losses(real, fake).numpy()
  expected = [_bce(1, 2.0) + _bce(0, -1.0), _bce(1, 0.0) + _bce(0, 3.0)]
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # log(2) each at logit 0: the discriminator cannot tell.
  np.testing.assert_allclose(
      model_lib.discriminator_losses(tf.zeros([1, 1]), tf.zeros([1, 1])).numpy(),
      [2 * math.log(2)], rtol=1e-6)


def test_one_sided_label_smoothing_only_softens_real_targets():
  real = tf.constant([[2.0]])
  fake = tf.constant([[-1.0]])
  got = model_lib.discriminator_losses(real, fake, label_smoothing=0.1).numpy()
  np.testing.assert_allclose(got, [_bce(0.9, 2.0) + _bce(0, -1.0)], rtol=1e-6)


def test_generator_loss_is_non_saturating():
  fake = tf.constant([[-4.0], [0.0], [4.0]])
  got = model_lib.generator_losses(fake).numpy()
  np.testing.assert_allclose(got, [math.log(1 + math.exp(4)), math.log(2),
                                   math.log(1 + math.exp(-4))], rtol=1e-6)
  # Non-saturating: when D confidently rejects the fake, the gradient stays large (-sigmoid(-x)).
  with tf.GradientTape() as tape:
    logits = tf.constant([[-6.0]])
    tape.watch(logits)
    loss = model_lib.generator_losses(logits)
  assert abs(float(tape.gradient(loss, logits))) > 0.99


@pytest.mark.parametrize('architecture', ['dense', 'dcgan'])
def test_one_train_step_updates_both_networks(architecture):
  keras.utils.set_random_seed(3)
  shape = (8, 8, 1)
  gan = model_lib.GAN(model_lib.build_generator(architecture, LATENT, shape),
                      model_lib.build_discriminator(architecture, shape), LATENT, 0.1)
  gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
  g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
  d_before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
  real = tf.random.uniform([16, *shape], -1.0, 1.0)
  logs = gan.train_on_batch(real, return_dict=True)
  assert set(logs) == {'d_loss', 'g_loss'}
  assert all(np.isfinite(v) for v in logs.values())
  assert all(not np.allclose(a, b.numpy()) for a, b in zip(g_before,
                                                           gan.generator.trainable_weights))
  assert all(not np.allclose(a, b.numpy()) for a, b in zip(d_before,
                                                           gan.discriminator.trainable_weights))


def _linear_discriminator(shape, weight):
  images = keras.Input(shape)
  logits = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(weight),
                              bias_initializer='zeros')(keras.layers.Flatten()(images))
  return keras.Model(images, logits)


def test_r1_penalty_is_half_gamma_times_the_squared_gradient_at_the_real_images():
  # D(x) = w . x has the gradient w at every x, so each image's penalty is gamma / 2 x |w|^2.
  shape = (4, 4, 1)
  discriminator = _linear_discriminator(shape, 0.5)
  real = tf.random.uniform([3, *shape], -1.0, 1.0)
  logits, penalties = model_lib.r1_penalties(discriminator, real, gamma=2.0)
  np.testing.assert_allclose(logits.numpy(), discriminator(real).numpy(), rtol=1e-6)
  np.testing.assert_allclose(penalties.numpy(), [0.5 * 2.0 * 16 * 0.25] * 3, rtol=1e-6)


def test_r1_penalty_enters_the_discriminator_loss_and_shrinks_its_gradient():
  shape = (4, 4, 1)
  real = tf.random.uniform([8, *shape], -1.0, 1.0)
  fixed_noise = tf.random.normal([8, LATENT])
  losses, weights = {}, {}
  for gamma in (0.0, 4.0):
    keras.utils.set_random_seed(5)
    generator = model_lib.build_generator('dense', LATENT, shape)
    gan = model_lib.GAN(generator, _linear_discriminator(shape, 0.5), LATENT, r1_gamma=gamma,
                        noise_fn=lambda batch, step: fixed_noise)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.0))
    losses[gamma] = gan.train_on_batch(real, return_dict=True)['d_loss']
    weights[gamma] = gan.discriminator.trainable_weights[0].numpy()
  # The same networks and noise: the loss differs by the mean penalty, 4 / 2 x 16 x 0.25 = 8.
  assert losses[4.0] - losses[0.0] == pytest.approx(8.0, rel=1e-4)
  # The penalty's gradient, gamma x w, pulls every weight towards 0: 0.01 x 4 x 0.5 = 0.02 more.
  np.testing.assert_allclose(weights[0.0] - weights[4.0], 0.02, rtol=1e-3)


@pytest.mark.parametrize('dropout, layers', [(0.3, 1), (0.0, 0)])
def test_the_dcgan_discriminator_dropout_can_be_left_out(dropout, layers):
  discriminator = model_lib.build_discriminator('dcgan', (8, 8, 1), dropout=dropout)
  found = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Dropout)]
  assert len(found) == layers
  assert all(layer.rate == dropout for layer in found)
