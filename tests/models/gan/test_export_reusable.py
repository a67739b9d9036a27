"""The exported generator as a reusable SavedModel: __call__ in both batch-norm modes, its
variables, gradients through it, and regularization losses that follow the weights."""

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from ganpipe.models.gan import model as model_lib
from ganpipe.models.gan import training

SHAPE, LATENT = (8, 8, 1), 4


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """A dense generator with moved batch-norm statistics, and its export loaded back."""
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator(model_lib.DENSE, LATENT, SHAPE)
  generator(tf.random.normal([16, LATENT]), training=True)
  path = str(tmp_path_factory.mktemp('export') / 'generator')
  training.export_generator(generator, LATENT, path)
  return generator, tf.saved_model.load(path)


def test_the_reusable_api_is_saved(exported):
  generator, loaded = exported
  assert [v.shape for v in loaded.variables] == [v.shape for v in generator.variables]
  assert ([v.shape for v in loaded.trainable_variables] ==
          [v.shape for v in generator.trainable_variables])
  assert len(loaded.trainable_variables) < len(loaded.variables)  # batch-norm statistics
  assert list(loaded.regularization_losses) == []  # the generator has no regularizers


def test_call_without_training_matches_the_serving_signature(exported):
  generator, loaded = exported
  noise = tf.random.normal([5, LATENT], seed=3)
  images = loaded(noise).numpy()
  np.testing.assert_allclose(
      images, loaded.signatures['serving_default'](noise=noise)['images'].numpy(), atol=1e-6)
  np.testing.assert_allclose(images, (generator(noise, training=False).numpy() + 1) / 2,
                             atol=1e-6)
  np.testing.assert_array_equal(loaded(noise, training=False).numpy(), images)


def test_call_in_training_uses_batch_statistics_and_matches_keras(tmp_path):
  keras.utils.set_random_seed(1)
  generator = model_lib.build_generator(model_lib.DENSE, LATENT, SHAPE)
  generator(tf.random.normal([16, LATENT]), training=True)
  training.export_generator(generator, LATENT, str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  noise = tf.random.normal([8, LATENT], seed=5)

  statistics = [v.numpy() for v in loaded.variables if not v.trainable]
  with tf.GradientTape() as tape:
    images = loaded(noise, training=True)
    loss = tf.reduce_sum(images ** 2)
  gradients = tape.gradient(loss, loaded.trainable_variables)
  with tf.GradientTape() as tape:
    expected = (generator(noise, training=True) + 1) / 2
    expected_loss = tf.reduce_sum(expected ** 2)
  expected_gradients = tape.gradient(expected_loss, generator.trainable_variables)

  np.testing.assert_allclose(images.numpy(), expected.numpy(), atol=1e-5)
  assert not np.allclose(images.numpy(), loaded(noise, training=False).numpy(), atol=1e-3)
  # The export's plain batch normalisation computes the batch variance in another order than
  # the synchronised one the generator trained with: the same up to float rounding.
  for got, want in zip(gradients, expected_gradients):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=5e-5)
  # Training mode updates the moving statistics, as Keras does.
  for before, after in zip(statistics, [v for v in loaded.variables if not v.trainable]):
    assert not np.allclose(before, after.numpy())


def test_regularization_losses_follow_the_weights(tmp_path):
  noise = keras.Input([LATENT])
  pixels = keras.layers.Dense(int(np.prod(SHAPE)), activation='tanh',
                              kernel_regularizer=keras.regularizers.L2(0.5))(noise)
  generator = keras.Model(noise, keras.layers.Reshape(SHAPE)(pixels))
  training.export_generator(generator, LATENT, str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))

  assert len(loaded.regularization_losses) == 1
  kernel = next(v for v in loaded.trainable_variables if 'kernel' in v.name)
  np.testing.assert_allclose(loaded.regularization_losses[0]().numpy(),
                             0.5 * np.sum(kernel.numpy() ** 2), rtol=1e-5)
  kernel.assign(tf.ones_like(kernel))
  np.testing.assert_allclose(loaded.regularization_losses[0]().numpy(),
                             0.5 * kernel.shape.num_elements(), rtol=1e-5)


@pytest.mark.parametrize('architecture, shape', [(model_lib.DENSE, SHAPE),
                                                 (model_lib.DCGAN, (8, 8, 1))])
def test_loading_the_export_warns_of_nothing(tmp_path, caplog, architecture, shape):
  # The synchronised batch normalisation of training over several replicas made `hub.load`
  # warn 18 times that functions had "unsaved custom gradients" (tensorflow/python/
  # saved_model/function_deserialization.py); the export normalises the plain way, with the same
  # weights.
  generator = model_lib.build_generator(architecture, LATENT, shape, synchronized=True)
  assert any(getattr(layer, 'synchronized', False) for layer in generator.layers)
  training.export_generator(generator, LATENT, str(tmp_path))
  with caplog.at_level(logging.WARNING):
    loaded = hub.load(str(tmp_path))
  assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
  noise = tf.random.normal([3, LATENT], seed=4)
  np.testing.assert_allclose(loaded(noise).numpy(), (generator(noise).numpy() + 1) / 2,
                             atol=1e-6)
