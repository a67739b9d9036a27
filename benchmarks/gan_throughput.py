"""Benchmark: GAN training throughput of our Trainer's step against a hand-written loop.

Both train the same generator and discriminator (same architecture, initial weights and batch)
on the same in-memory batches, in the same process:
  - ours: the GAN the Trainer builds and compiles (`models.gan.training.build_gan`, default
    GanConfig: Adam with its learning-rate schedules, steps_per_execution), then `fit()` on the
    dataset as the Trainer prepares it (`models.training.inputs.for_fit`), timed to fit()'s
    return, as the Trainer waits for it;
  - baseline: a plain `tf.function` step with two GradientTapes and Adam, called in a Python loop.
Each is warmed up (tracing) before it is timed; the order alternates over repeats. For ours, the
JSON also gives the seconds from the last step's end to fit()'s return: tf.data's autotuning
thread once held that return up to a minute (see for_fit).

  .venv/bin/python benchmarks/gan_throughput.py [--steps 300] [--repeats 3] [--cases dense-8x8x1]
      [--steps-per-execution N]  (default: the Trainer's GanConfig value)

Writes gan_throughput.json and gan_throughput.md. Goal: ours / baseline >= 0.9; below it, the
benchmark names each failing case and its ratio on stderr, one line each, and exits with 1.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (sets TensorFlow's variables before it loads)
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from ganpipe.models.gan import model as model_lib  # noqa: E402
from ganpipe.models.gan import training  # noqa: E402
from ganpipe.models.training import inputs  # noqa: E402
from ganpipe.models.training import strategy as strategy_lib  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402

CASES = {'dense-8x8x1': ('dense', (8, 8, 1)), 'dcgan-28x28x1': ('dcgan', (28, 28, 1)),
         'dcgan-32x32x3': ('dcgan', (32, 32, 3))}
LATENT, BATCH = 64, 64
GOAL = 0.9


def _dataset(shape):
  images = np.random.default_rng(0).uniform(-1, 1, (BATCH * 16, *shape)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(images).repeat().batch(BATCH).prefetch(2)


def _networks(architecture, shape):
  keras.utils.set_random_seed(0)
  # One device: the plain batch normalisation a hand-written single-device loop would use, as
  # the Trainer's build_gan does with one replica.
  return (model_lib.build_generator(architecture, LATENT, shape, synchronized=False),
          model_lib.build_discriminator(architecture, shape))


class _TrainEnd(keras.callbacks.Callback):
  def on_train_end(self, logs=None):
    self.time = time.perf_counter()


def ours(architecture, shape, steps, steps_per_execution):
  """(images/s, seconds fit() took to return after its last step).

  The time is fit()'s whole call, as the Trainer pays it, including dropping its input iterator.
  """
  config = config_lib.GanConfig(architecture=architecture, latent_dim=LATENT, batch_size=BATCH,
                                steps_per_execution=steps_per_execution)
  keras.utils.set_random_seed(0)  # the same initial weights as the baseline's
  gan = training.build_gan(config, shape, strategy_lib.choose_training_setup())
  dataset = inputs.for_fit(_dataset(shape))  # as training.train hands it to fit()
  gan.fit(dataset, epochs=1, steps_per_epoch=20, verbose=0)  # warm-up: tracing
  train_end = _TrainEnd()
  started = time.perf_counter()
  gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[train_end])
  returned = time.perf_counter()
  return steps * BATCH / (returned - started), returned - train_end.time


def hand_written(architecture, shape, steps, steps_per_execution):
  del steps_per_execution  # one step per call: the plain loop the goal compares against
  generator, discriminator = _networks(architecture, shape)
  d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
  g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
  bce = keras.losses.BinaryCrossentropy(from_logits=True)

  @tf.function
  def step(real):
    batch = tf.shape(real)[0]
    noise = tf.random.normal([batch, LATENT])
    with tf.GradientTape() as tape:
      fake = generator(noise, training=True)
      real_logits = discriminator(real, training=True)
      fake_logits = discriminator(fake, training=True)
      d_loss = (bce(tf.fill(tf.shape(real_logits), 0.9), real_logits)
                + bce(tf.zeros_like(fake_logits), fake_logits))
    grads = tape.gradient(d_loss, discriminator.trainable_variables)
    d_optimizer.apply_gradients(zip(grads, discriminator.trainable_variables))
    noise = tf.random.normal([batch, LATENT])
    with tf.GradientTape() as tape:
      fake_logits = discriminator(generator(noise, training=True), training=True)
      g_loss = bce(tf.ones_like(fake_logits), fake_logits)
    grads = tape.gradient(g_loss, generator.trainable_variables)
    g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    return d_loss, g_loss

  iterator = iter(_dataset(shape))
  for _ in range(20):  # warm-up: tracing
    step(next(iterator))
  started = time.perf_counter()
  for _ in range(steps):
    losses = step(next(iterator))
  float(losses[0])  # wait for the last step
  return steps * BATCH / (time.perf_counter() - started)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--cases', default=','.join(CASES))
  parser.add_argument('--steps-per-execution', type=int,
                      default=config_lib.GanConfig().steps_per_execution,
                      help="ours' steps per train-function call (default: the Trainer's)")
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  results = {'benchmark': 'gan_throughput', 'batch': BATCH, 'latent_dim': LATENT,
             'steps_per_execution': args.steps_per_execution,
             'steps': args.steps, 'repeats': args.repeats, 'cpus': os.cpu_count(), 'cases': {}}
  unknown = [name for name in args.cases.split(',') if name not in CASES]
  if unknown:
    parser.error(f'unknown case(s) {", ".join(unknown)}; choose from {", ".join(CASES)}')
  for name in args.cases.split(','):
    architecture, shape = CASES[name]
    ours_runs, baseline_runs, returns = [], [], []
    for repeat in range(args.repeats):
      for measure in (ours, hand_written) if repeat % 2 == 0 else (hand_written, ours):
        result = measure(architecture, shape, args.steps, args.steps_per_execution)
        if measure is ours:
          ours_runs.append(result[0])
          returns.append(result[1])
        else:
          baseline_runs.append(result)
    case = {'ours_images_per_second': round(statistics.median(ours_runs), 1),
            'hand_written_images_per_second': round(statistics.median(baseline_runs), 1),
            'ours_runs': [round(r, 1) for r in ours_runs],
            'hand_written_runs': [round(r, 1) for r in baseline_runs],
            'ours_seconds_from_last_step_to_return': [round(r, 2) for r in returns]}
    case['ratio'] = round(case['ours_images_per_second'] /
                          case['hand_written_images_per_second'], 3)
    results['cases'][name] = case
    print(name, json.dumps(case), flush=True)
  failing = below_goal(results['cases'])
  results['meets_goal'] = not failing
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'gan_throughput.json'), 'w') as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(args.out, 'gan_throughput.md'), 'w') as f:
    f.write(f'# GAN training throughput (batch {BATCH}, steps_per_execution '
            f'{args.steps_per_execution}, {os.cpu_count()} CPUs, median of '
            f'{args.repeats})\n\n| case | ours (img/s) | hand-written (img/s) | ratio |\n'
            '|---|---|---|---|\n')
    for name, case in results['cases'].items():
      f.write(f'| {name} | {case["ours_images_per_second"]} | '
              f'{case["hand_written_images_per_second"]} | {case["ratio"]} |\n')
  for line in failing:
    print(line, file=sys.stderr)
  return 1 if failing else 0


def below_goal(cases) -> list:
  """One line per case whose ratio is under GOAL, naming the case and the ratio."""
  return [f'gan_throughput: FAIL {name}: ours / hand-written = {case["ratio"]:.3f} < {GOAL} '
          f'({case["ours_images_per_second"]} vs {case["hand_written_images_per_second"]} '
          'images/s)' for name, case in cases.items() if case['ratio'] < GOAL]


if __name__ == '__main__':
  sys.exit(main())
