"""Benchmark: GAN training time by image size, for the default and the --small configuration.

The GAN trains for epochs x steps_per_epoch batches whatever the data's size, so its time is
that many steps at the cost of one, which grows with the image's pixels (the DCGAN from 16
pixels a side). Each case builds the GAN the Trainer builds (`models.gan.training.build_gan`),
fits it on random images for a warm-up (tracing), then times `--steps` steps and extrapolates to
each configuration's step count. The rest of a run (ingestion, Transform, the classifier,
evaluation, validation) depends on the number of images, not only their size: see the README.

  .venv/bin/python benchmarks/gan_training_time.py [--steps 100] [--sizes 8x8x1,16x16x3,...]

Writes gan_training_time.json and gan_training_time.md.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (sets TensorFlow's variables before it loads)
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from benchmarks import results_files  # noqa: E402
from ganpipe.models import hparams  # noqa: E402
from ganpipe.models.gan import training  # noqa: E402
from ganpipe.models.training import inputs  # noqa: E402
from ganpipe.models.training import strategy as strategy_lib  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402
from ganpipe.pipeline import overrides as config_overrides  # noqa: E402

SIZES = '8x8x1,16x16x1,16x16x3,28x28x1,32x32x3,64x64x3'
WARMUP_STEPS = 20


def _shape(text: str):
  return tuple(int(v) for v in text.split('x'))


def seconds_per_step(gan_config: hparams.GanConfig, shape, steps: int) -> float:
  keras.utils.set_random_seed(0)
  gan = training.build_gan(gan_config, shape, strategy_lib.choose_training_setup())
  images = np.random.default_rng(0).uniform(-1, 1, (gan_config.batch_size * 8, *shape))
  # As the Trainer hands it to fit(): with tf.data's autotuning on, fit() can return tens of
  # seconds after its last step (inputs.for_fit), which made 100 steps here take 40.95 s.
  dataset = inputs.for_fit(tf.data.Dataset.from_tensor_slices(images.astype(np.float32))
                           .repeat().batch(gan_config.batch_size).prefetch(2))
  gan.fit(dataset, epochs=1, steps_per_epoch=WARMUP_STEPS, verbose=0)
  started = time.perf_counter()
  gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
  return (time.perf_counter() - started) / steps


def configs_for(shape):
  """The default and the --small configurations, for a folder of `shape` images."""
  size = {'data.dataset': 'folder', 'data.data_dir': '/data', 'data.image_size': shape[:2],
          'data.channels': shape[2]}
  full = config_overrides.with_overrides(config_lib.get_config(), size)
  small = config_lib.small_for_image_size(
      config_overrides.with_overrides(config_lib.get_config(small=True), size))
  return full, small


def markdown(results) -> str:
  lines = [f'# GAN training time by image size ({results["cpus"]} CPUs, '
           f'{results["processor"] or "unknown CPU"})', '',
           f'Seconds per step measured over {results["steps"]} steps after '
           f'{WARMUP_STEPS} of warm-up; the totals extrapolate that to each configuration\'s '
           'steps (epochs x steps_per_epoch).', '',
           '| image | GAN | s/step | default: steps | default: GAN time | --small: steps | '
           '--small: GAN time |', '|---|---|---|---|---|---|---|']
  for name, case in results['cases'].items():
    lines.append(f'| {name} | {case["architecture"]} | {case["seconds_per_step"]:.4f} | '
                 f'{case["default_steps"]} | {case["default_minutes"]:.1f} min | '
                 f'{case["small_steps"]} | {case["small_minutes"]:.1f} min |')
  return '\n'.join(lines) + '\n'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=100)
  parser.add_argument('--sizes', default=SIZES, help='HxWxC,... (default: %(default)s)')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  results = {'benchmark': 'gan_training_time', 'steps': args.steps, 'cpus': os.cpu_count(),
             'processor': platform.processor(), 'cases': {}}
  for name in args.sizes.split(','):
    shape = _shape(name)
    full, small = configs_for(shape)
    per_step = seconds_per_step(full.gan, shape, args.steps)
    small_per_step = (per_step if small.gan.batch_size == full.gan.batch_size
                      else seconds_per_step(small.gan, shape, args.steps))
    case = {'architecture': hparams.resolve_architecture(full.gan.architecture, shape),
            'seconds_per_step': round(per_step, 5),
            'default_steps': full.gan_epochs() * full.gan.steps_per_epoch,
            'small_steps': small.gan_epochs() * small.gan.steps_per_epoch,
            'small_seconds_per_step': round(small_per_step, 5)}
    case['default_minutes'] = round(case['default_steps'] * per_step / 60, 2)
    case['small_minutes'] = round(case['small_steps'] * small_per_step / 60, 2)
    results['cases'][name] = case
    print(name, json.dumps(case), flush=True)
  results_files.write(args.out, 'gan_training_time', results, markdown(results))
  return 0


if __name__ == '__main__':
  sys.exit(main())
