"""Evaluating a generator with a trained classifier: plain functions over SavedModel paths."""

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from ganpipe.components.generator_evaluator import metrics
from ganpipe.components.generator_evaluator import sampling
from ganpipe.models import signatures

BATCH = 256


def real_samples(examples_uri: str, count: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """Real train and eval images, as many of each: at most `count`, stratified over classes.

  Both samples are drawn from the whole split with `seed` (see `sampling`), so that a dataset
  written class by class gives the same reference as one whose classes are interleaved.

  Returns:
    (train pixels, eval pixels), each [n, h, w, c] floats in [0, 1].
  """
  files = {split: sampling.split_files(examples_uri, split) for split in ('train', 'eval')}
  counts = {split: sampling.class_counts(found) for split, found in files.items()}
  size = min(count, *(sum(c.values()) for c in counts.values()))
  train, _ = sampling.sample(files['train'], sampling.quotas(counts['train'], size), seed)
  evaluation, _ = sampling.sample(files['eval'], sampling.quotas(counts['eval'], size), seed)
  return train, evaluation


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

  The real reference score is that of the eval images, which the classifier did not train on:
  on its own training images a classifier is more confident than on any other images.

  Returns:
    frechet_classifier_distance, classifier_score: of the generated images;
    real_frechet_classifier_distance: of real train vs real eval images;
    real_classifier_score: of the real eval images;
    baseline_frechet_classifier_distance: of the baseline generator, when given;
    num_samples: images per set; feature_dimensions: the classifier's features;
    distance_meaningful: whether there are more images than feature dimensions, without which
      the covariances are singular and the distances mean nothing (`metrics.distance_meaningful`).
  """
  count = len(real_eval)
  embed = ClassifierEmbedding(classifier_dir)
  eval_embedding = embed(real_eval)
  train_embedding = embed(real_train)
  generated = embed(generate(generator_dir, count, seed))
  dimensions = int(eval_embedding['features'].shape[1])
  result = {
      'num_samples': count,
      'feature_dimensions': dimensions,
      'distance_meaningful': metrics.distance_meaningful(count, dimensions),
      'frechet_classifier_distance': metrics.frechet_classifier_distance(
          generated['features'], eval_embedding['features']),
      'classifier_score': metrics.classifier_score(generated['probabilities']),
      'real_frechet_classifier_distance': metrics.frechet_classifier_distance(
          train_embedding['features'], eval_embedding['features']),
      'real_classifier_score': metrics.classifier_score(eval_embedding['probabilities']),
  }
  if baseline_dir:
    baseline = embed(generate(baseline_dir, count, seed))
    result['baseline_frechet_classifier_distance'] = metrics.frechet_classifier_distance(
        baseline['features'], eval_embedding['features'])
  return result
