"""The MLP classifier: pure Keras model code, a function of its configuration."""

from typing import Sequence, Tuple

import tf_keras as keras

INPUT_NAME = 'image'
FEATURES_LAYER = 'features'   # the last hidden layer: the embedding the GAN metrics use
OUTPUT_LAYER = 'probabilities'


def build_classifier(image_shape: Tuple[int, int, int], num_classes: int,
                     hidden_units: Sequence[int], activation: str = 'relu',
                     dropout: float = 0.0, input_noise: float = 0.0,
                     batch_norm: bool = False) -> keras.Model:
  """Flatten -> Dense hidden layers -> softmax over the classes, h = phi(xW + b).

  With batch normalisation each hidden layer is h = phi(BN(xW)): the Dense has no bias, which
  BN's offset replaces. Either way the layer named `features` outputs the last hidden layer
  after its activation, so the GAN's metrics see the same kind of space.

  Args:
    image_shape: (height, width, channels) of the [0, 1] input images.
    num_classes: size of the softmax.
    hidden_units: units of each hidden layer; the last one is named `features`.
    activation: `relu` or `tanh`.
    dropout: rate of the dropout after each hidden layer (training only); 0 for none.
    input_noise: stddev of Gaussian noise on the input pixels (training only); 0 for none.
    batch_norm: batch normalisation between each hidden Dense and its activation.

  Returns:
    An uncompiled keras.Model from `image` to `probabilities`.
  """
  if num_classes < 2:
    raise ValueError(f'a classifier needs at least 2 classes, got {num_classes}')
  inputs = keras.Input(shape=image_shape, name=INPUT_NAME)
  x = inputs
  if input_noise:
    x = keras.layers.GaussianNoise(input_noise, name='input_noise')(x)
  x = keras.layers.Flatten(name='flatten')(x)
  for index, units in enumerate(hidden_units):
    name = FEATURES_LAYER if index == len(hidden_units) - 1 else f'hidden_{index}'
    if batch_norm:
      x = keras.layers.Dense(units, use_bias=False, name=f'{name}_dense')(x)
      x = keras.layers.BatchNormalization(name=f'{name}_batch_norm')(x)
      x = keras.layers.Activation(activation, name=name)(x)
    else:
      x = keras.layers.Dense(units, activation=activation, name=name)(x)
    if dropout:
      x = keras.layers.Dropout(dropout, name=f'dropout_{index}')(x)
  outputs = keras.layers.Dense(num_classes, activation='softmax', name=OUTPUT_LAYER)(x)
  return keras.Model(inputs, outputs, name='mlp_classifier')


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
  """The named Keras optimizer."""
  optimizers = {
      'adam': lambda: keras.optimizers.Adam(learning_rate),
      'sgd': lambda: keras.optimizers.SGD(learning_rate, momentum=0.9),
      'rmsprop': lambda: keras.optimizers.RMSprop(learning_rate),
  }
  if name not in optimizers:
    raise ValueError(f'unknown optimizer {name!r}; expected one of {", ".join(optimizers)}')
  return optimizers[name]()


def compile_classifier(model: keras.Model, optimizer: str, learning_rate: float) -> None:
  """Sparse categorical cross-entropy, mini-batch gradient descent, accuracy."""
  model.compile(
      optimizer=make_optimizer(optimizer, learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(),
      metrics=[keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
