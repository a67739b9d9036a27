"""Benchmark: do the generator's blessing thresholds separate trained generators from bad ones?

Takes a finished pipeline run (its pipeline root) and judges, with that run's classifier and
examples and the default thresholds, three generators: the run's trained one, an untrained one
(the same architecture, freshly initialised), and a fully collapsed one (every noise vector gives
the same real training image). The default thresholds must bless the first and reject the others.

  .venv/bin/python benchmarks/generator_thresholds.py RUN [--out benchmarks/results]

RUN is the pipeline root of a finished `ganpipe run`, or a model_quality_<dataset>.json that
`benchmarks/model_quality.py` wrote (it names its run's pipeline root).
Writes generator_thresholds_<height>x<width>x<channels>.json and .md.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (sets TensorFlow's variables before it loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from ganpipe.components.generator_evaluator import evaluation  # noqa: E402
from ganpipe.components.generator_evaluator import metrics  # noqa: E402
from ganpipe.models import signatures  # noqa: E402
from ganpipe.models.gan import model as model_lib  # noqa: E402
from ganpipe.models.gan import training as gan_training  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402

from benchmarks import finished_run  # noqa: E402


def _collapsed_generator(image: np.ndarray, latent_dim: int) -> keras.Model:
  """Maps every noise vector to `image` (in [-1, 1]): total mode collapse onto a real image."""
  noise = keras.Input((latent_dim,), name='noise')
  constant = tf.constant(image[np.newaxis] * 2.0 - 1.0, tf.float32)
  images = keras.layers.Lambda(
      lambda z: tf.tile(constant, [tf.shape(z)[0], 1, 1, 1]), name='images')(noise)
  return keras.Model(noise, images, name='collapsed_generator')


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('run', help='a pipeline root, or a model_quality_<dataset>.json')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  run = finished_run.FinishedRun(args.run, 'generator_thresholds')
  root = run.root
  defaults = config_lib.GeneratorEvaluationConfig()
  classifier_dir, trained_dir, examples_dir = (run.classifier_dir, run.generator_dir,
                                               run.examples_dir)
  run_metrics = run.generator_metrics()
  count = int(run_metrics['num_samples'])
  real_train, real_eval = evaluation.real_samples(examples_dir, count, seed=0)
  image_shape = real_eval.shape[1:]
  serving = tf.saved_model.load(trained_dir).signatures[signatures.GENERATE_FROM_NOISE]
  latent_dim = serving.structured_input_signature[1]['noise'].shape[1]
  architecture = model_lib.resolve_architecture('auto', image_shape)

  workdir = tempfile.mkdtemp(prefix='ganpipe-thresholds-')
  generators = {'trained (this run)': trained_dir}
  keras.utils.set_random_seed(0)
  for name, generator in (
      ('untrained', model_lib.build_generator(architecture, latent_dim, image_shape)),
      ('collapsed onto one real image', _collapsed_generator(real_train[0], latent_dim))):
    path = os.path.join(workdir, name.split()[0])
    gan_training.export_generator(generator, latent_dim, path)
    generators[name] = path

  rows = []
  for name, path in generators.items():
    figures = evaluation.evaluate(path, classifier_dir, real_train, real_eval, seed=0)
    verdict = metrics.judge(
        figures['frechet_classifier_distance'], figures['classifier_score'],
        figures['real_frechet_classifier_distance'], figures['real_classifier_score'], None,
        defaults.max_distance_ratio, defaults.min_score_ratio, defaults.max_distance_increase,
        figures['distance_meaningful'])
    rows.append({
        'generator': name,
        'frechet_classifier_distance': figures['frechet_classifier_distance'],
        'distance_ratio': (figures['frechet_classifier_distance'] /
                           figures['real_frechet_classifier_distance']),
        'classifier_score': figures['classifier_score'],
        'score_ratio': figures['classifier_score'] / figures['real_classifier_score'],
        'blessed': verdict.blessed, 'reasons': verdict.reasons,
        'real_frechet_classifier_distance': figures['real_frechet_classifier_distance'],
        'real_classifier_score': figures['real_classifier_score']})
    print(json.dumps(rows[-1]), flush=True)

  shape = 'x'.join(str(size) for size in image_shape)
  expected = [True, False, False]
  result = {'benchmark': 'generator_thresholds', 'pipeline_root': root, 'samples': count,
            'thresholds': {'max_distance_ratio': defaults.max_distance_ratio,
                           'min_score_ratio': defaults.min_score_ratio},
            'generators': rows,
            'separates': [row['blessed'] for row in rows] == expected}
  name = f'generator_thresholds_{shape}'
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(result, f, indent=2)
  lines = [f'# Generator blessing thresholds, {shape} images ({count} samples each)', '',
           f'Default thresholds: distance at most {defaults.max_distance_ratio} times the real '
           f'images\' distance, classifier score at least {defaults.min_score_ratio:.0%} of '
           'theirs.', '',
           '| generator | distance | / real | score | / real | blessed |',
           '|---|---|---|---|---|---|']
  for row in rows:
    lines.append(f'| {row["generator"]} | {row["frechet_classifier_distance"]:.1f} | '
                 f'{row["distance_ratio"]:.1f} | {row["classifier_score"]:.2f} | '
                 f'{row["score_ratio"]:.1%} | {"yes" if row["blessed"] else "no"} |')
  lines += ['', f'Real train vs eval: distance {rows[0]["real_frechet_classifier_distance"]:.2f}, '
            f'score {rows[0]["real_classifier_score"]:.2f}. The thresholds '
            f'{"separate" if result["separates"] else "do NOT separate"} trained from untrained '
            'and collapsed generators.']
  with open(os.path.join(args.out, f'{name}.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
