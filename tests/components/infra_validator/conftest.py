"""Small SavedModels, examples laid out like pipeline output and fake servers, for the tests."""

import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from ganpipe.components.image_example_gen import images
from ganpipe.models import features
from ganpipe.models.gan import model as gan_model
from ganpipe.models.gan import training as gan_training
from tests import image_data

SHAPE = (8, 8, 1)
LATENT_DIM = 8
NUM_CLASSES = 10
NUM_EVAL = 12


class TinyClassifier(tf.Module):
  """The exported classifier's serving contract on 8x8 grayscale PNGs, with PNG decoding in-graph.

  `scale` multiplies the probabilities, so 0.7 makes a model whose probabilities sum to 0.7.
  """

  def __init__(self, scale: float = 1.0):
    super().__init__(name='tiny_classifier')
    rng = np.random.default_rng(0)
    self.weights = tf.Variable(rng.normal(size=(np.prod(SHAPE), NUM_CLASSES)).astype(np.float32))
    self.names = tf.constant([f'digit_{i}' for i in range(NUM_CLASSES)])
    self.scale = scale

  def _predict(self, pngs):
    pixels = tf.map_fn(lambda png: tf.io.decode_png(png, channels=SHAPE[2]), pngs,
                       fn_output_signature=tf.TensorSpec(SHAPE, tf.uint8))
    flat = tf.reshape(tf.cast(pixels, tf.float32) / 255.0, [-1, int(np.prod(SHAPE))])
    probabilities = tf.nn.softmax(flat @ self.weights) * self.scale
    class_ids = tf.argmax(probabilities, axis=1)
    return {'probabilities': probabilities, 'class_ids': class_ids,
            'class_names': tf.gather(self.names, class_ids)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='images')])
  def serve_images(self, images):
    return self._predict(images)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(self, examples):
    parsed = tf.io.parse_example(examples,
                                 {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    return self._predict(parsed[features.IMAGE_KEY])


class GeneratorWithoutGenerate(tf.Module):
  """A generator that lacks the `generate` signature; plain TF, as Keras models save slowly."""

  def __init__(self):
    super().__init__(name='generator_without_generate')
    rng = np.random.default_rng(0)
    self.weights = tf.Variable(rng.normal(size=(LATENT_DIM, np.prod(SHAPE))).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None, LATENT_DIM], tf.float32, name='noise')])
  def serve(self, noise):
    return {'images': tf.reshape(tf.sigmoid(noise @ self.weights), [-1, *SHAPE])}


def save_classifier(export_dir: str, scale: float = 1.0) -> None:
  module = TinyClassifier(scale)
  tf.saved_model.save(module, export_dir, signatures={
      'serving_default': module.serve_images, 'serving_examples': module.serve_examples})


def executable(path, script):
  """Writes `script` as an executable shell script, to stand in for a model server binary."""
  with open(path, 'w') as f:
    f.write('#!/bin/sh\n' + script)
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
  return str(path)


# Package-scoped: the test modules share one build (exporting the Keras generator is slow).
@pytest.fixture(scope='package')
def pipeline_output(tmp_path_factory):
  """`examples/Split-{train,eval}/data.gz` and models `<name>/Format-Serving/`:

  classifier, generator (good); half_classifier (probabilities sum to 0.7); no_generate
  (a generator without its `generate` signature); corrupt (a garbage saved_model.pb).
  """
  root = tmp_path_factory.mktemp('infra_validator')
  pixels, labels = image_data.digits_arrays(2 * NUM_EVAL)
  for split, rows in (('train', slice(0, NUM_EVAL)), ('eval', slice(NUM_EVAL, None))):
    os.makedirs(root / 'examples' / f'Split-{split}')
    image_data.write_tfrecord(
        str(root / 'examples' / f'Split-{split}' / 'data.gz'),
        [images.make_example(p[..., np.newaxis], int(l), str(l), f'digits:{i}')
         for i, (p, l) in enumerate(zip(pixels[rows], labels[rows]))])

  save_classifier(str(root / 'classifier' / 'Format-Serving'))
  save_classifier(str(root / 'half_classifier' / 'Format-Serving'), scale=0.7)
  save_classifier(str(root / 'corrupt' / 'Format-Serving'))
  with open(root / 'corrupt' / 'Format-Serving' / 'saved_model.pb', 'wb') as f:
    f.write(b'this is not a SavedModel')

  tf.random.set_seed(0)
  generator = gan_model.build_generator(gan_model.DENSE, LATENT_DIM, SHAPE)
  gan_training.export_generator(generator, LATENT_DIM, str(root / 'generator' / 'Format-Serving'))
  module = GeneratorWithoutGenerate()
  tf.saved_model.save(module, str(root / 'no_generate' / 'Format-Serving'),
                      signatures={'serving_default': module.serve})
  return root
