"""Benchmark: quality of both models at the default configuration, on digits or Fashion-MNIST.

Runs the whole pipeline with the default configuration (Beam runner) in a fresh folder and
reports the classifier's eval accuracy (TFMA) and the generator's Fréchet classifier distance
and classifier score next to the real-data reference (GeneratorEvaluator). On digits it also
trains scikit-learn's SVC on exactly the same train/eval split, and the classic SVC on
scikit-learn's own 50/50 split, as reference figures.

  .venv/bin/python benchmarks/model_quality.py [--dataset digits|fashion-mnist]
      [--out benchmarks/results]

Writes model_quality_<dataset>.json and .md. Goals: classifier accuracy >= 0.97 on digits (SVC
reaches 0.97 on a 50/50 split) and >= 0.90 on Fashion-MNIST, the default blessing floor (its
benchmark's MLP 256-128-64 reached 0.90); a generated classifier score of at least 80% of the
real data's.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sklearn import datasets, svm  # noqa: E402

from ganpipe.pipeline import config as config_lib  # noqa: E402
from ganpipe.pipeline import overrides as config_overrides  # noqa: E402
from ganpipe.pipeline import run_summary, runner  # noqa: E402

from benchmarks import finished_run  # noqa: E402

TARGETS = {'digits': 0.97, 'fashion-mnist': 0.90}


def _svc_on_pipeline_split(pipeline_root: str) -> float:
  examples_dir = finished_run.FinishedRun(pipeline_root, 'model_quality').examples_dir
  x_train, y_train = finished_run.labelled_split(examples_dir, 'train')
  x_eval, y_eval = finished_run.labelled_split(examples_dir, 'eval')
  return float(svm.SVC().fit(x_train.reshape(len(x_train), -1), y_train)
               .score(x_eval.reshape(len(x_eval), -1), y_eval))


def _svc_on_sklearn_half_split() -> float:
  # scikit-learn's "Recognizing hand-written digits" example: first half train, second half test.
  digits = datasets.load_digits()
  data = digits.images.reshape(len(digits.images), -1)
  half = len(data) // 2
  return float(svm.SVC(gamma=0.001).fit(data[:half], digits.target[:half])
               .score(data[half:], digits.target[half:]))


def _overrides(assignments):
  hints = dict(config_overrides.field_paths())
  overrides = {}
  for assignment in assignments:
    name, _, text = assignment.partition('=')
    if name not in hints:
      raise SystemExit(f'--set {assignment}: unknown field {name!r}')
    overrides[name] = config_overrides.parse_value(text, hints[name], name)
  return overrides


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', choices=sorted(TARGETS), default='digits')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='override a config field, e.g. --set gan.epochs=30 (for experiments; '
                           'the figures then no longer describe the default configuration)')
  args = parser.parse_args()
  target = TARGETS[args.dataset]

  workdir = tempfile.mkdtemp(prefix='ganpipe-bench-')
  config = config_overrides.with_overrides(config_lib.get_config(), {
      'paths.pipeline_root': os.path.join(workdir, 'pipeline'),
      'paths.metadata_path': os.path.join(workdir, 'metadata.sqlite'),
      'paths.serving_root': os.path.join(workdir, 'serving'),
      'paths.hub_root': os.path.join(workdir, 'hub'),
      'data.dataset': args.dataset,
      **_overrides(args.set),
  })
  started = time.monotonic()
  summary, error = runner.run(config)
  seconds = time.monotonic() - started
  if error is not None:
    raise error
  print(run_summary.format_summary(summary))
  classifier = next(m for m in summary.models if m.name == 'classifier')
  generator = next(m for m in summary.models if m.name == 'generator')
  score_ratio = generator.details['classifier_score'] / generator.details['real_classifier_score']
  result = {
      'benchmark': 'model_quality',
      'dataset': args.dataset,
      'classifier_config': config_overrides.to_dict(config.classifier),
      'gan_config': {**config_overrides.to_dict(config.gan), 'epochs': config.gan_epochs()},
      'overrides': list(args.set),
      # Kept, for benchmarks/generator_thresholds.py to judge other generators against the run.
      'pipeline_root': config.paths.pipeline_root,
      'eval_examples': classifier.example_count,
      'classifier_eval_accuracy': classifier.metric,
      'classifier_blessed': classifier.blessed,
      'generator_samples': generator.example_count,
      'generator_frechet_classifier_distance': generator.metric,
      'real_frechet_classifier_distance': generator.details['real_frechet_classifier_distance'],
      'generator_classifier_score': generator.details['classifier_score'],
      'real_classifier_score': generator.details['real_classifier_score'],
      'generator_score_ratio': score_ratio,
      'generator_blessed': generator.blessed,
      'pipeline_wall_seconds': round(seconds, 1),
      'components': [{'id': c.node_id, 'status': c.status, 'seconds': c.seconds}
                     for c in summary.components],
      'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()},
      'goals': {'classifier_eval_accuracy': target, 'generator_score_ratio': 0.8},
  }
  result['meets_goals'] = (classifier.metric >= target and score_ratio >= 0.8)
  rows = [(f'ganpipe MLP {config.classifier.hidden_units} (TFMA)',
           f'pipeline split, {classifier.example_count} eval', classifier.metric)]
  if args.dataset == 'digits':
    result['svc_same_split_accuracy'] = _svc_on_pipeline_split(config.paths.pipeline_root)
    result['svc_sklearn_50_50_split_accuracy'] = _svc_on_sklearn_half_split()
    rows += [('sklearn SVC()', 'same split', result['svc_same_split_accuracy']),
             ('sklearn SVC(gamma=0.001)', 'sklearn 50/50',
              result['svc_sklearn_50_50_split_accuracy'])]
  os.makedirs(args.out, exist_ok=True)
  name = f'model_quality_{args.dataset}'
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(args.out, f'{name}.md'), 'w') as f:
    setting = ('default configuration' if not args.set else
               'default configuration with ' + ', '.join(args.set))
    f.write(f'# Model quality on {args.dataset} ({setting})\n\n'
            '## Classifier\n\n| model | split | eval accuracy |\n|---|---|---|\n')
    for model, split, accuracy in rows:
      f.write(f'| {model} | {split} | {accuracy:.4f} |\n')
    f.write('\n## Generator\n\n| images | Fréchet classifier distance | classifier score |\n'
            '|---|---|---|\n'
            f'| generated vs real eval ({generator.example_count}) | '
            f'{generator.metric:.3f} | {result["generator_classifier_score"]:.3f} |\n'
            f'| real train vs real eval (reference) | '
            f'{result["real_frechet_classifier_distance"]:.3f} | '
            f'{result["real_classifier_score"]:.3f} |\n\n'
            f'Generated score / real score: {score_ratio:.1%} (goal 80%). '
            f'Goals {"met" if result["meets_goals"] else "NOT met"}. Pipeline wall time: '
            f'{seconds:.1f} s on {os.cpu_count()} CPUs (Beam DirectRunner, multi-processing).\n')
  print(json.dumps({k: v for k, v in result.items() if k != 'components'}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())
