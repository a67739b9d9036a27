"""Benchmark: TensorFlow's oneDNN CPU kernels on and off, for the work this product does.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it first asks whether oneDNN is on, and without
it decides by the CPU: on Linux, on only where the CPU has AVX-512 VNNI or BF16, AVX-VNNI or AMX
(`DefaultOneDnnPolicy` in tensorflow/core/util/port.cc). The package root turns it on for every
x86-64 ganpipe process unless the user set it (ganpipe/__init__.py); this benchmark is the
measurement behind that default.

Each case runs in a fresh process with the variable at 0 and at 1, alternating which goes first
over the rounds, and checks that TensorFlow took the setting (`IsMklEnabled`):
  - gan-dcgan-28x28x1, gan-dense-8x8x1: the Trainer's GAN (`build_gan`, default GanConfig) in
    `fit()`, images/s;
  - classifier-28x28x1: the default MLP classifier (512-256, batch normalisation, dropout) in
    `fit()` on batches of 128, examples/s;
  - predict-classifier, predict-generator: one image (one noise vector) at a time through the
    model in a tf.function, as a batch-1 request reaches it, median and p99 microseconds.

  .venv/bin/python benchmarks/onednn.py [--rounds 3] [--steps 100] [--cases a,b] [--out DIR]

Writes onednn.json and onednn.md: per case the median over rounds with oneDNN on and off, and
on / off (for latency, off / on: above 1 means on is better either way).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import results_files  # noqa: E402
THROUGHPUT = ('gan-dcgan-28x28x1', 'gan-dense-8x8x1', 'classifier-28x28x1')
LATENCY = ('predict-classifier', 'predict-generator')
CASES = THROUGHPUT + LATENCY


def _child(case: str, steps: int) -> dict:
  """Measures one case in this process; TF_ENABLE_ONEDNN_OPTS is already set by the parent."""
  import numpy as np
  import tensorflow as tf
  import tf_keras as keras
  from tensorflow.python.util import _pywrap_util_port

  from ganpipe.models import hparams
  from ganpipe.models.classifier import model as classifier_lib
  from ganpipe.models.gan import model as gan_lib
  from ganpipe.models.gan import training
  from ganpipe.models.training import inputs
  from ganpipe.models.training import strategy as strategy_lib

  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  result = {'onednn': bool(_pywrap_util_port.IsMklEnabled())}

  def timed_fit(model, dataset, batch):
    model.fit(dataset, epochs=1, steps_per_epoch=20, verbose=0)  # warm-up: tracing
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return round(steps * batch / (time.perf_counter() - started), 1)

  def latency(function, example):
    for _ in range(50):
      function(example)
    times = []
    for _ in range(steps * 10):
      started = time.perf_counter()
      function(example).numpy()
      times.append(time.perf_counter() - started)
    return {'p50_us': round(float(np.percentile(times, 50)) * 1e6, 1),
            'p99_us': round(float(np.percentile(times, 99)) * 1e6, 1)}

  def default_classifier():
    config = hparams.ClassifierConfig()
    return classifier_lib.build_classifier(
        (28, 28, 1), 10, config.hidden_units, config.activation, config.dropout,
        config.input_noise, config.batch_norm)

  if case.startswith('gan-'):
    architecture = case.split('-')[1]
    shape = (28, 28, 1) if architecture == 'dcgan' else (8, 8, 1)
    config = hparams.GanConfig(architecture=architecture)
    gan = training.build_gan(config, shape, strategy_lib.choose_training_setup())
    images = rng.uniform(-1, 1, (config.batch_size * 16, *shape)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(images).repeat().batch(config.batch_size)
    result['per_second'] = timed_fit(gan, inputs.for_fit(dataset.prefetch(2)), config.batch_size)
  elif case == 'classifier-28x28x1':
    config = hparams.ClassifierConfig()
    model = default_classifier()
    classifier_lib.compile_classifier(model, config.optimizer, config.learning_rate)
    images = rng.uniform(0, 1, (config.batch_size * 16, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, config.batch_size * 16)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(
        config.batch_size).prefetch(2)
    result['per_second'] = timed_fit(model, inputs.for_fit(dataset), config.batch_size)
  elif case == 'predict-classifier':
    model = default_classifier()
    function = tf.function(lambda x: model(x, training=False))
    result.update(latency(function, tf.constant(rng.uniform(0, 1, (1, 28, 28, 1)),
                                                tf.float32)))
  elif case == 'predict-generator':
    generator = gan_lib.build_generator('dcgan', 64, (28, 28, 1), synchronized=False)
    function = tf.function(lambda z: generator(z, training=False))
    result.update(latency(function, tf.constant(rng.normal(size=(1, 64)), tf.float32)))
  else:
    raise ValueError(f'unknown case {case!r}')
  return result


def _run(case: str, onednn: bool, steps: int) -> dict:
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='1' if onednn else '0',
             TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
  completed = subprocess.run(
      [sys.executable, os.path.abspath(__file__), '--child', case, '--steps', str(steps)],
      env=env, capture_output=True, text=True, check=False)
  if completed.returncode:
    raise RuntimeError(f'{case} with oneDNN {"on" if onednn else "off"} failed:\n'
                       f'{completed.stderr[-3000:]}')
  result = json.loads(completed.stdout.strip().splitlines()[-1])
  if result['onednn'] != onednn:
    raise RuntimeError(f'{case}: asked for oneDNN {onednn}, TensorFlow has {result["onednn"]}')
  return result


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=100,
                      help='timed fit() steps; latency cases time 10x this many calls')
  parser.add_argument('--cases', default=','.join(CASES))
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  if args.child:
    print(json.dumps(_child(args.child, args.steps)), flush=True)
    return 0
  cases = args.cases.split(',')
  unknown = [case for case in cases if case not in CASES]
  if unknown:
    parser.error(f'unknown case(s) {", ".join(unknown)}; choose from {", ".join(CASES)}')

  results = {'benchmark': 'onednn', 'rounds': args.rounds, 'steps': args.steps,
             'cpus': os.cpu_count(), 'cases': {}}
  for case in cases:
    runs = {'off': [], 'on': []}
    for round_ in range(args.rounds):
      for onednn in (False, True) if round_ % 2 == 0 else (True, False):
        runs['on' if onednn else 'off'].append(_run(case, onednn, args.steps))
    key = 'per_second' if case in THROUGHPUT else 'p50_us'
    row = {side: round(statistics.median(r[key] for r in runs[side]), 1) for side in runs}
    row['runs'] = runs
    # Both ratios read "above 1: oneDNN on is better".
    row['on_over_off' if key == 'per_second' else 'off_over_on'] = round(
        row['on'] / row['off'] if key == 'per_second' else row['off'] / row['on'], 3)
    row['measure'] = 'images or examples per second' if key == 'per_second' else 'p50 us'
    results['cases'][case] = row
    print(case, json.dumps({k: v for k, v in row.items() if k != 'runs'}), flush=True)

  report = (f'# oneDNN on and off ({os.cpu_count()} CPUs, median of {args.rounds} rounds, '
            f'{args.steps} steps)\n\n| case | measure | off | on | better with on by |\n'
            '|---|---|---|---|---|\n')
  for case, row in results['cases'].items():
    ratio = row.get('on_over_off', row.get('off_over_on'))
    report += f'| {case} | {row["measure"]} | {row["off"]} | {row["on"]} | {ratio} |\n'
  results_files.write(args.out, 'onednn', results, report)
  return 0


if __name__ == '__main__':
  sys.exit(main())
