"""MirroredStrategy over two virtual CPU devices gives the one-device update."""

import json
import subprocess
import sys


def test_mirrored_step_matches_single_device_step():
  result = subprocess.run([sys.executable, '-m', 'tests.models.gan.mirrored_check'],
                          capture_output=True, text=True, check=True, timeout=300)
  figures = json.loads(result.stdout.strip().splitlines()[-1])
  assert figures['replicas'] == 2
  assert figures['max_abs_update'] > 1e-4  # the step did move the weights
  assert figures['max_abs_difference'] < 1e-5, figures
  # The minibatch standard deviation is of the global batch, so it matches too; each
  # replica's own would not (the control).
  assert figures['stddev_max_abs_update'] > 1e-4
  assert figures['stddev_max_abs_difference'] < 1e-5, figures
  assert figures['unsynchronized_stddev_max_abs_difference'] > 1e-4, figures
  # The Trainer's GAN over two replicas keeps every batch norm (three in the generator) and the
  # discriminator's minibatch standard deviation synchronised.
  assert figures['build_gan_synchronized'] == [True, True, True, True]
