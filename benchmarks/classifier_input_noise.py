"""Benchmark: how the classifier's input noise changes its accuracy and the generator's figures.

The GeneratorEvaluator judges the generator with the classifier trained in the same run, so the
classifier's training decides what the Fréchet classifier distance and classifier score say.
This takes a finished run, trains the default classifier again on the run's train split with
each input noise level and seed (the pipeline's model code and configuration, fitted in memory
rather than through the Trainer), and reports for each: the eval accuracy, and the run's
generator's classifier score and distance relative to the real images', as the evaluator
computes them (the same sample count and seed).

  .venv/bin/python benchmarks/classifier_input_noise.py RUN [--noise 0 0.3] [--seeds 1 2]
      [--out benchmarks/results]

RUN is the pipeline root of a finished `ganpipe run`, or a model_quality_<dataset>.json.
Writes classifier_input_noise_<height>x<width>x<channels>.json and .md.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (sets TensorFlow's variables before it loads)
import tf_keras as keras  # noqa: E402

from ganpipe.models.classifier import model as classifier_model  # noqa: E402
from ganpipe.models.classifier import training  # noqa: E402
from ganpipe.models.training import inputs  # noqa: E402
from ganpipe.components.generator_evaluator import evaluation  # noqa: E402
from ganpipe.components.generator_evaluator import metrics  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402
from ganpipe.pipeline import overrides as config_overrides  # noqa: E402

from benchmarks import finished_run  # noqa: E402


def _train(config: config_lib.ClassifierConfig, noise: float, seed: int, train_split,
           eval_split, num_classes: int) -> keras.Model:
  """The Trainer's own training (architecture, schedule, early stopping) at `noise`."""
  keras.utils.set_random_seed(seed)
  config = dataclasses.replace(config, input_noise=noise)
  return training.train(
      config, train_split[0].shape[1:], num_classes,
      inputs.array_dataset(*train_split, config.batch_size, seed=seed),
      inputs.array_dataset(*eval_split, config.batch_size, shuffle=False), log_dir=None)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('run', help='a pipeline root, or a model_quality_<dataset>.json')
  parser.add_argument('--noise', type=float, nargs='+', default=[0.0, 0.3])
  parser.add_argument('--seeds', type=int, nargs='+', default=[1, 2])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  run = finished_run.FinishedRun(args.run, 'classifier_input_noise')
  config = config_lib.ClassifierConfig()
  generator_dir = run.generator_dir
  count = int(run.generator_metrics()['num_samples'])
  x_train, y_train = finished_run.labelled_split(run.examples_dir, 'train')
  x_eval, y_eval = finished_run.labelled_split(run.examples_dir, 'eval')
  num_classes = int(max(y_train.max(), y_eval.max())) + 1
  # What GeneratorEvaluator compares: `count` eval and train images, stratified over classes
  # with seed 0, and as many generated images from the `generate` signature with seed 0.
  sample_train, sample_eval = evaluation.real_samples(run.examples_dir, count, seed=0)
  generated = evaluation.generate(generator_dir, len(sample_eval), seed=0)

  rows = []
  for noise in args.noise:
    for seed in args.seeds:
      started = time.monotonic()
      model = _train(config, noise, seed, (x_train, y_train), (x_eval, y_eval), num_classes)
      embed = keras.Model(model.input, [model.get_layer(classifier_model.FEATURES_LAYER).output,
                                        model.output])
      real_eval, real_train, fake = (embed.predict(x, batch_size=500, verbose=0)
                                     for x in (sample_eval, sample_train, generated))
      real_distance = metrics.frechet_classifier_distance(real_train[0], real_eval[0])
      rows.append({
          'input_noise': noise, 'seed': seed,
          'eval_accuracy': float(model.evaluate(x_eval, y_eval, verbose=0)[1]),
          'score_ratio': (metrics.classifier_score(fake[1]) /
                          metrics.classifier_score(real_eval[1])),
          'distance_ratio': metrics.frechet_classifier_distance(fake[0], real_eval[0]) /
                            real_distance,
          'seconds': round(time.monotonic() - started, 1)})
      print(json.dumps(rows[-1]), flush=True)

  shape = 'x'.join(str(size) for size in x_train.shape[1:])
  result = {'benchmark': 'classifier_input_noise', 'pipeline_root': run.root,
            'generator': generator_dir, 'samples': count, 'classifier_config':
            config_overrides.to_dict(config), 'rows': rows}
  name = f'classifier_input_noise_{shape}'
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(result, f, indent=2)
  lines = [f'# Classifier input noise, {shape} images', '',
           f'Default classifier ({config.epochs} epochs) retrained on the run\'s train split; the '
           f'run\'s generator judged by each ({count} samples).', '',
           '| input noise | seed | eval accuracy | generated score / real | distance / real |',
           '|---|---|---|---|---|']
  for row in rows:
    lines.append(f'| {row["input_noise"]} | {row["seed"]} | {row["eval_accuracy"]:.4f} | '
                 f'{row["score_ratio"]:.1%} | {row["distance_ratio"]:.1f} |')
  with open(os.path.join(args.out, f'{name}.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
