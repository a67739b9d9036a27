"""Evaluating a generator with a trained classifier: plain functions over SavedModel paths."""

import glob
import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from ganpipe.components.generator_evaluator import metrics
from ganpipe.models import features
from ganpipe.models import signatures

BATCH = 256


def read_real_images(examples_uri: str, split: str, count: int) -> np.ndarray:
  """The first `count` images of a split of ImageExampleGen's output, floats in [0, 1]."""
  files = sorted(glob.glob(os.path.join(examples_uri, f'Split-{split}', '*')))
  if not files:
    raise FileNotFoundError(f'no examples in {examples_uri}/Split-{split}')
  pixels = []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP').take(count):
    example = tf.train.Example.FromString(record.numpy())
    png = example.features.feature[features.IMAGE_KEY].bytes_list.value[0]
    pixels.append(tf.io.decode_png(png).numpy())
  return np.stack(pixels).astype(np.float32) / 255.0


def generate(generator_dir: str, count: int, seed: int) -> np.ndarray:
  """`count` images from an exported generator's `generate` signature, floats in [0, 1]."""
  generator = tf.saved_model.load(generator_dir)
  out = generator.signatures[signatures.GENERATE](
      num_images=tf.constant(count, tf.int32), seed=tf.constant(seed, tf.int64))
  return out['images'].numpy()


class ClassifierEmbedding:
  """The classifier's penultimate-layer features and class probabilities of [0, 1] images."""

  def __init__(self, classifier_dir: str):
    self._model = tf.saved_model.load(classifier_dir)
    self._signature = self._model.signatures[signatures.IMAGE_FEATURES]

  def __call__(self, pixels: np.ndarray) -> Dict[str, np.ndarray]:
    outputs = {'features': [], 'probabilities': []}
    for start in range(0, len(pixels), BATCH):
      batch = self._signature(images=tf.constant(pixels[start:start + BATCH], tf.float32))
      for key in outputs:
        outputs[key].append(batch[key].numpy())
    return {key: np.concatenate(value) for key, value in outputs.items()}


def evaluate(generator_dir: str, classifier_dir: str, real_train: np.ndarray,
             real_eval: np.ndarray, seed: int,
             baseline_dir: Optional[str] = None) -> Dict[str, float]:
  """Distances and scores of generated images against real eval images, with the reference.

  Returns:
    frechet_classifier_distance, classifier_score: of the generated images;
    real_frechet_classifier_distance, real_classifier_score: of real train vs real eval images;
    baseline_frechet_classifier_distance: of the baseline generator, when given;
    num_samples: images per set.
  """
  count = len(real_eval)
  embed = ClassifierEmbedding(classifier_dir)
  eval_embedding = embed(real_eval)
  train_embedding = embed(real_train)
  generated = embed(generate(generator_dir, count, seed))
  result = {
      'num_samples': count,
      'frechet_classifier_distance': metrics.frechet_classifier_distance(
          generated['features'], eval_embedding['features']),
      'classifier_score': metrics.classifier_score(generated['probabilities']),
      'real_frechet_classifier_distance': metrics.frechet_classifier_distance(
          train_embedding['features'], eval_embedding['features']),
      'real_classifier_score': metrics.classifier_score(train_embedding['probabilities']),
  }
  if baseline_dir:
    baseline = embed(generate(baseline_dir, count, seed))
    result['baseline_frechet_classifier_distance'] = metrics.frechet_classifier_distance(
        baseline['features'], eval_embedding['features'])
  return result
