"""The artifacts of a finished pipeline run, for the benchmarks that judge one."""

import glob
import json
import os
from typing import Tuple

import numpy as np

import ganpipe  # noqa: F401  (sets TensorFlow's variables before it loads)
import tensorflow as tf

from ganpipe.models import features


class FinishedRun:
  """A finished `ganpipe run`: its pipeline root, or a model_quality_<dataset>.json naming it."""

  def __init__(self, run: str, benchmark: str):
    self._benchmark = benchmark
    self.root = run
    if run.endswith('.json'):
      with open(run) as f:
        self.root = json.load(f)['pipeline_root']

  def newest(self, *parts: str) -> str:
    """The newest path under the root that matches `parts` (glob patterns)."""
    pattern = os.path.join(self.root, *parts)
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
      raise SystemExit(f'{self._benchmark}: error: nothing matches {pattern}; pass the pipeline '
                       'root of a finished `ganpipe run`')
    return found[-1]

  @property
  def examples_dir(self) -> str:
    return self.newest('image_example_gen', 'examples', '*')

  @property
  def classifier_dir(self) -> str:
    return self.newest('classifier_trainer', 'model', '*', 'Format-Serving')

  @property
  def generator_dir(self) -> str:
    return self.newest('gan_trainer', 'model', '*', 'Format-Serving')

  def generator_metrics(self) -> dict:
    """The GeneratorEvaluator's metrics.json."""
    with open(self.newest('generator_evaluator', 'evaluation', '*', 'metrics.json')) as f:
      return json.load(f)


def labelled_split(examples_dir: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
  """All images of a split of ImageExampleGen's output as [0, 1] floats, and their labels."""
  files = sorted(glob.glob(os.path.join(examples_dir, f'Split-{split}', '*')))
  if not files:
    raise FileNotFoundError(f'no examples in {examples_dir}/Split-{split}')
  pixels, labels = [], []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    pixels.append(tf.io.decode_png(feature[features.IMAGE_KEY].bytes_list.value[0]).numpy())
    labels.append(feature[features.LABEL_KEY].int64_list.value[0])
  return np.stack(pixels).astype(np.float32) / 255.0, np.array(labels)
