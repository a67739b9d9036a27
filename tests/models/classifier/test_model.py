"""The MLP classifier's builder: shapes, parameter counts and one training step."""

import numpy as np
import pytest
import tf_keras as keras

from ganpipe.models.classifier import model as model_lib


@pytest.mark.parametrize('image_shape, hidden, classes, expected_params', [
    # 64 inputs: (64*256 + 256) + (256*128 + 128) + (128*10 + 10)
    ((8, 8, 1), (256, 128), 10, 16_640 + 32_896 + 1_290),
    # 28*28*3 = 2352 inputs: (2352*64 + 64) + (64*5 + 5)
    ((28, 28, 3), (64,), 5, 150_592 + 325),
])
@pytest.mark.parametrize('dropout, input_noise', [(0.0, 0.0), (0.3, 0.3)])
def test_shapes_and_parameter_counts(image_shape, hidden, classes, expected_params, dropout,
                                     input_noise):
  model = model_lib.build_classifier(image_shape, classes, hidden, 'relu', dropout, input_noise)
  assert model.input_shape == (None, *image_shape)
  assert model.output_shape == (None, classes)
  assert model.count_params() == expected_params
  assert model.get_layer(model_lib.FEATURES_LAYER).units == hidden[-1]
  dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
  assert len(dropouts) == (len(hidden) if dropout else 0)
  noises = [layer for layer in model.layers if isinstance(layer, keras.layers.GaussianNoise)]
  assert len(noises) == (1 if input_noise else 0)


def test_batch_norm_sits_between_each_dense_and_its_activation():
  model = model_lib.build_classifier((8, 8, 1), 10, (256, 128), 'relu', batch_norm=True)
  # Dense layers without bias (BN's offset replaces it); BN keeps 4 values a unit, 2 trained.
  assert model.count_params() == 64 * 256 + 256 * 128 + (128 * 10 + 10) + 4 * (256 + 128)
  assert len(model.non_trainable_weights) == 4  # the moving means and variances
  kinds = [type(layer).__name__ for layer in model.layers[2:]]
  assert kinds == ['Dense', 'BatchNormalization', 'Activation'] * 2 + ['Dense']
  assert not any(layer.use_bias for layer in model.layers if layer.name.endswith('_dense'))
  # `features` is still the last hidden layer after its activation: the GAN metrics' space.
  features = model.get_layer(model_lib.FEATURES_LAYER)
  assert features.output_shape == (None, 128) and features.activation.__name__ == 'relu'


@pytest.mark.parametrize('activation', ['relu', 'tanh'])
def test_outputs_are_probabilities(activation):
  model = model_lib.build_classifier((8, 8, 1), 10, (16,), activation)
  assert model.get_layer(model_lib.FEATURES_LAYER).activation.__name__ == activation
  probabilities = model(np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32))
  np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)


def test_one_training_step_changes_every_weight_with_a_finite_loss():
  keras.utils.set_random_seed(0)
  model = model_lib.build_classifier((8, 8, 1), 3, (8, 4), 'tanh')
  model_lib.compile_classifier(model, 'sgd', 0.1)
  before = [w.numpy().copy() for w in model.trainable_weights]
  images = np.random.default_rng(1).random((6, 8, 8, 1), dtype=np.float32)
  history = model.fit(images, np.array([0, 1, 2, 0, 1, 2]), batch_size=6, epochs=1, verbose=0)
  assert np.isfinite(history.history['loss'][0])
  for old, new in zip(before, model.trainable_weights):
    assert not np.allclose(old, new.numpy())


def test_rejects_a_single_class():
  with pytest.raises(ValueError, match='at least 2 classes'):
    model_lib.build_classifier((8, 8, 1), 1, (8,))


def test_unknown_optimizer():
  with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
    model_lib.make_optimizer('adagrad', 0.1)
