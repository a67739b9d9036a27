"""Benchmark: the classifier Trainer's accuracy over seeds, and its throughput against `fit`.

Trains with the Trainer's own code (ganpipe/models/classifier/training.py) on the pipeline's
splits, without running the pipeline. Fashion-MNIST's split is its own files (train-* 60,000,
t10k-* 10,000: IdxSource.given_splits); the digits' is the stratified hash split that
ImageExampleGen makes (4:1 by class), rebuilt here from the same keys. Pixels are the uint8
values / 255: the pipeline stores lossless PNG and Transform decodes it with
tf.io.decode_image(dtype=float32), which scales by 1/255.

  quality:    accuracy on the eval split for each seed, from the in-memory datasets the
              Trainer uses when the splits fit its cache.
  throughput: the Trainer's path from transformed-example files (written here as Transform
              writes them, read through TFX's own FnArgs and DataAccessor) against
              `model.fit` on the same model and the same data as NumPy arrays, in the same run,
              with the cache and without it (cache_mb=0, the streaming path of before).

  .venv/bin/python benchmarks/classifier_training.py quality --dataset fashion-mnist \\
      --seeds 1,2,3 [--set classifier.epochs=30] [--out benchmarks/results]
  .venv/bin/python benchmarks/classifier_training.py throughput --epochs 3

Writes classifier_<mode>_<dataset>.json and .md.
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from sklearn import datasets  # noqa: E402

from ganpipe.components.image_example_gen import split as split_lib  # noqa: E402
from ganpipe.components.image_example_gen.sources import idx  # noqa: E402
from ganpipe.models.classifier import model as model_lib  # noqa: E402
from ganpipe.models.classifier import training  # noqa: E402
from ganpipe.models.training import inputs  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402
from ganpipe.pipeline import overrides as config_overrides  # noqa: E402
from tests import image_data  # noqa: E402

FASHION_MNIST = '/usr/share/datasets/fashion-mnist'
GOALS = {'digits': 0.975, 'fashion-mnist': 0.90}
THROUGHPUT_GOAL = 0.8


def load_split(dataset: str):
  """((train images, labels), (eval images, labels)) as the pipeline splits and scales them."""
  if dataset == 'fashion-mnist':
    def read(prefix):
      pixels = idx.read_records(f'{FASHION_MNIST}/{prefix}-images-idx3-ubyte.gz', 0, 10**9)
      labels = idx.read_records(f'{FASHION_MNIST}/{prefix}-labels-idx1-ubyte.gz', 0, 10**9)
      return pixels[..., np.newaxis].astype(np.float32) / 255.0, labels.astype(np.int64)
    return read('train'), read('t10k')
  digits = datasets.load_digits()
  # As sources/builtin.py spreads the 0..16 intensities over 8 bits.
  pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  labels = digits.target.astype(np.int64)
  keys = np.array([split_lib.split_key(f'digits:{i}'.encode()) for i in range(len(labels))],
                  dtype=object)
  in_eval = np.zeros(len(labels), bool)
  defaults = config_lib.DataConfig()
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    cuts = split_lib.cuts(list(keys[members]), [defaults.train_buckets, defaults.eval_buckets])
    in_eval[members] = [split_lib.assign(k, cuts) == 1 for k in keys[members]]
  images = pixels[..., np.newaxis].astype(np.float32) / 255.0
  return (images[~in_eval], labels[~in_eval]), (images[in_eval], labels[in_eval])


def config_section(assignments, section: str = 'classifier'):
  """The default config's `section` (classifier, gan, ...) with `--set FIELD=VALUE` applied."""
  hints = dict(config_overrides.field_paths())
  overrides = {}
  for assignment in assignments:
    name, _, text = assignment.partition('=')
    if name not in hints or not name.startswith(f'{section}.'):
      raise SystemExit(f'--set {assignment}: not a {section} field')
    overrides[name] = config_overrides.parse_value(text, hints[name], name)
  return getattr(config_overrides.with_overrides(config_lib.get_config(), overrides), section)


def quality(args, config):
  (x_train, y_train), (x_eval, y_eval) = load_split(args.dataset)
  runs = []
  for seed in args.seeds:
    keras.utils.set_random_seed(seed)
    started = time.monotonic()
    train_ds = inputs.array_dataset(x_train, y_train, config.batch_size, seed=seed)
    eval_ds = inputs.array_dataset(x_eval, y_eval, config.batch_size, shuffle=False)
    model = training.train(config, x_train.shape[1:], 10, train_ds, eval_ds, log_dir=None)
    seconds = time.monotonic() - started
    epochs = len(model.history.history['loss'])
    accuracy = float(model.evaluate(x_eval, y_eval, batch_size=1024, verbose=0)[1])
    runs.append({'seed': seed, 'eval_accuracy': round(accuracy, 4), 'epochs_run': epochs,
                 'seconds': round(seconds, 1), 'load_average_1m': round(os.getloadavg()[0], 2)})
    print(json.dumps(runs[-1]), flush=True)
  accuracies = [run['eval_accuracy'] for run in runs]
  return {'train_examples': len(y_train), 'eval_examples': len(y_eval), 'runs': runs,
          'min_accuracy': min(accuracies), 'mean_accuracy': round(float(np.mean(accuracies)), 4),
          'goal': GOALS[args.dataset], 'meets_goal': min(accuracies) >= GOALS[args.dataset]}


def throughput(args, config):
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  splits = load_split(args.dataset)
  (x_train, y_train), (x_eval, y_eval) = splits
  workdir = tempfile.mkdtemp(prefix='ganpipe-clf-throughput-')
  started = time.monotonic()
  fn_args = image_data.write_transformed(workdir, splits)
  print(f'wrote transformed examples in {time.monotonic() - started:.0f} s', flush=True)
  config = dataclasses.replace(config, epochs=args.epochs, early_stopping_patience=0)
  n = len(y_train) * args.epochs
  # The first fit in a process pays a one-time cost (30-40 s on 2 busy CPUs), whatever feeds
  # it; the pipeline's Trainer pays it too. It is paid here before any case is timed.
  started = time.monotonic()
  warm_up = model_lib.build_classifier(x_train.shape[1:], 10, config.hidden_units,
                                       batch_norm=config.batch_norm)
  model_lib.compile_classifier(warm_up, config.optimizer, config.learning_rate)
  warm_up.fit(x_train[:5000], y_train[:5000], batch_size=config.batch_size, verbose=0,
              validation_data=(x_eval[:1000], y_eval[:1000]))
  warm_up_seconds = time.monotonic() - started
  cases = {}
  for name, cache_mb in (('trainer_cached', config.cache_mb), ('trainer_streamed', 0)):
    case_config = dataclasses.replace(config, cache_mb=cache_mb)
    keras.utils.set_random_seed(0)
    started = time.monotonic()
    data = training.training_datasets(
        case_config, fn_args, tft.TFTransformOutput(fn_args.transform_output), 0)
    assert data.in_memory == (('train', 'eval') if cache_mb else ()), data.in_memory
    training.train(case_config, x_train.shape[1:], 10, data.train, data.eval,
                   log_dir=os.path.join(workdir, f'logs-{name}'))
    cases[name] = time.monotonic() - started
    keras.utils.set_random_seed(0)
    model = model_lib.build_classifier(x_train.shape[1:], 10, config.hidden_units,
                                       config.activation, config.dropout, config.input_noise,
                                       config.batch_norm)
    model_lib.compile_classifier(model, config.optimizer, config.learning_rate)
    started = time.monotonic()
    model.fit(x_train, y_train, batch_size=config.batch_size, epochs=args.epochs,
              validation_data=(x_eval, y_eval), verbose=0)
    cases[f'fit_numpy_beside_{name}'] = time.monotonic() - started
    print(name, {k: round(v, 1) for k, v in cases.items()}, flush=True)
  result = {'train_examples': len(y_train), 'eval_examples': len(y_eval),
            'epochs': args.epochs, 'seconds': {k: round(v, 1) for k, v in cases.items()},
            'examples_per_second': {k: round(n / v) for k, v in cases.items()},
            'load_average_1m': round(os.getloadavg()[0], 2),
            'warm_up_seconds': round(warm_up_seconds, 1)}
  result['ratio_cached'] = round(
      cases['fit_numpy_beside_trainer_cached'] / cases['trainer_cached'], 3)
  result['ratio_streamed'] = round(
      cases['fit_numpy_beside_trainer_streamed'] / cases['trainer_streamed'], 3)
  result['goal'] = THROUGHPUT_GOAL
  result['meets_goal'] = result['ratio_cached'] >= THROUGHPUT_GOAL
  return result


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('mode', choices=('quality', 'throughput'))
  parser.add_argument('--dataset', choices=sorted(GOALS), default='fashion-mnist')
  parser.add_argument('--seeds', default='1,2,3',
                      type=lambda text: [int(s) for s in text.split(',')])
  parser.add_argument('--epochs', type=int, default=3, help='throughput: epochs per case')
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='override a classifier field, e.g. --set classifier.epochs=30')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  config = config_section(args.set)
  started = time.monotonic()
  result = (quality if args.mode == 'quality' else throughput)(args, config)
  result = {'benchmark': f'classifier_{args.mode}', 'dataset': args.dataset,
            'classifier_config': config_overrides.to_dict(config), 'overrides': args.set,
            **result, 'wall_seconds': round(time.monotonic() - started, 1),
            'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                        'tensorflow': tf.__version__}}
  os.makedirs(args.out, exist_ok=True)
  name = f'classifier_{args.mode}_{args.dataset}'
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(args.out, f'{name}.md'), 'w') as f:
    f.write(f'# Classifier {args.mode} on {args.dataset}\n\n'
            f'Configuration: {"default" if not args.set else ", ".join(args.set)}\n\n')
    if args.mode == 'quality':
      f.write('| seed | eval accuracy | epochs run | seconds | load average |\n'
              '|---|---|---|---|---|\n')
      for run in result['runs']:
        f.write(f'| {run["seed"]} | {run["eval_accuracy"]:.4f} | {run["epochs_run"]} | '
                f'{run["seconds"]} | {run["load_average_1m"]} |\n')
      f.write(f'\nLowest {result["min_accuracy"]:.4f}, goal {result["goal"]}: '
              f'{"met" if result["meets_goal"] else "NOT met"}.\n')
    else:
      f.write('| case | seconds | examples/s |\n|---|---|---|\n')
      for case, seconds in result['seconds'].items():
        f.write(f'| {case} | {seconds} | {result["examples_per_second"][case]} |\n')
      f.write(f'\nTrainer / fit on NumPy: {result["ratio_cached"]} cached, '
              f'{result["ratio_streamed"]} streamed (goal {THROUGHPUT_GOAL}); '
              f'{result["epochs"]} epochs, load average {result["load_average_1m"]}; a first '
              f'fit in the process, untimed, took {result["warm_up_seconds"]} s.\n')
  print(json.dumps({k: v for k, v in result.items() if k != 'classifier_config'}, indent=2))
  return 0 if result['meets_goal'] else 1


if __name__ == '__main__':
  sys.exit(main())
