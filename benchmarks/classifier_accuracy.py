"""Benchmark: eval accuracy of the default classifier on digits, against scikit-learn's SVC.

Runs the whole pipeline with the default configuration (Beam runner) in a fresh folder, then
trains scikit-learn's SVC on exactly the same train/eval split for comparison, and the classic
SVC on scikit-learn's own 50/50 split as a reference figure.

  .venv/bin/python benchmarks/classifier_accuracy.py [--out benchmarks/results]

Writes classifier_accuracy.json and classifier_accuracy.md.
"""

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import components  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf  # noqa: E402
from sklearn import datasets, svm  # noqa: E402

from pipeline import config as config_lib  # noqa: E402
from pipeline import run_summary, runner  # noqa: E402


def _split_pixels(pipeline_root: str, split: str):
  files = glob.glob(os.path.join(pipeline_root, 'image_example_gen', 'examples', '*',
                                 f'Split-{split}', '*.gz'))
  pixels, labels = [], []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy())
    png = example.features.feature['image'].bytes_list.value[0]
    pixels.append(tf.io.decode_png(png).numpy().reshape(-1) / 255.0)
    labels.append(example.features.feature['label'].int64_list.value[0])
  return np.array(pixels), np.array(labels)


def _svc_on_pipeline_split(pipeline_root: str) -> float:
  x_train, y_train = _split_pixels(pipeline_root, 'train')
  x_eval, y_eval = _split_pixels(pipeline_root, 'eval')
  return float(svm.SVC().fit(x_train, y_train).score(x_eval, y_eval))


def _svc_on_sklearn_half_split() -> float:
  # scikit-learn's "Recognizing hand-written digits" example: first half train, second half test.
  digits = datasets.load_digits()
  data = digits.images.reshape(len(digits.images), -1)
  half = len(data) // 2
  return float(svm.SVC(gamma=0.001).fit(data[:half], digits.target[:half])
               .score(data[half:], digits.target[half:]))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  workdir = tempfile.mkdtemp(prefix='ganpipe-bench-')
  config = config_lib.with_overrides(config_lib.get_config(), {
      'paths.pipeline_root': os.path.join(workdir, 'pipeline'),
      'paths.metadata_path': os.path.join(workdir, 'metadata.sqlite'),
      'paths.serving_root': os.path.join(workdir, 'serving'),
  })
  started = time.monotonic()
  summary, error = runner.run(config)
  seconds = time.monotonic() - started
  if error is not None:
    raise error
  print(run_summary.format_summary(summary))
  classifier = next(m for m in summary.models if m.name == 'classifier')
  result = {
      'benchmark': 'classifier_accuracy',
      'dataset': 'digits (scikit-learn, 1,797 8x8 images)',
      'config': config_lib.to_dict(config.classifier),
      'split': {'train_buckets': config.data.train_buckets,
                'eval_buckets': config.data.eval_buckets},
      'eval_examples': classifier.example_count,
      'pipeline_eval_accuracy': classifier.metric,
      'blessed': classifier.blessed,
      'svc_same_split_accuracy': _svc_on_pipeline_split(config.paths.pipeline_root),
      'svc_sklearn_50_50_split_accuracy': _svc_on_sklearn_half_split(),
      'pipeline_wall_seconds': round(seconds, 1),
      'components': [{'id': c.node_id, 'status': c.status, 'seconds': c.seconds}
                     for c in summary.components],
      'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()},
      'target': 'pipeline_eval_accuracy >= 0.97',
  }
  result['meets_target'] = result['pipeline_eval_accuracy'] >= 0.97
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'classifier_accuracy.json'), 'w') as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(args.out, 'classifier_accuracy.md'), 'w') as f:
    f.write('# Classifier accuracy on digits\n\n'
            '| model | split | eval accuracy |\n|---|---|---|\n'
            f'| ganpipe MLP {config.classifier.hidden_units} (TFMA) | pipeline '
            f'{config.data.train_buckets}:{config.data.eval_buckets} hash split, '
            f'{classifier.example_count} eval | {classifier.metric:.4f} |\n'
            f'| sklearn SVC() | same split | {result["svc_same_split_accuracy"]:.4f} |\n'
            f'| sklearn SVC(gamma=0.001) | sklearn 50/50 | '
            f'{result["svc_sklearn_50_50_split_accuracy"]:.4f} |\n\n'
            f'Pipeline wall time: {seconds:.1f} s on {os.cpu_count()} CPUs '
            f'(Beam DirectRunner, multi-processing).\n')
  print(json.dumps({k: result[k] for k in ('pipeline_eval_accuracy', 'svc_same_split_accuracy',
                                           'svc_sklearn_50_50_split_accuracy',
                                           'pipeline_wall_seconds', 'meets_target')}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())
