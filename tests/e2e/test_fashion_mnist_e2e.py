"""End to end on a few thousand real Fashion-MNIST images from Debian's dataset-fashion-mnist.

CI installs the package (`.ci/run`), so there this test always runs; elsewhere it is skipped,
with the reason, when the package is missing.
"""

import glob
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ganpipe.components.image_example_gen.sources import builtin
from ganpipe.components.image_example_gen.sources import idx
from tests import image_data

pytestmark = pytest.mark.e2e

GANPIPE = os.path.join(os.path.dirname(sys.executable), 'ganpipe')
TRAIN, TEST = 3000, 1000


def _require_fashion_mnist():
  if os.path.isdir(builtin.FASHION_MNIST_DIR):
    return
  message = (f'Fashion-MNIST is not installed at {builtin.FASHION_MNIST_DIR} '
             '(apt-get install dataset-fashion-mnist)')
  if os.environ.get('CI'):
    pytest.fail(f'{message}; .ci/run must install it')
  pytest.skip(message)


def _subset(out_dir):
  """The first TRAIN train and TEST t10k images, as gzipped IDX files like the package's."""
  for prefix, count in (('train', TRAIN), ('t10k', TEST)):
    for kind, ndim in (('images', 3), ('labels', 1)):
      name = f'{prefix}-{kind}-idx{ndim}-ubyte'
      records = idx.read_records(os.path.join(builtin.FASHION_MNIST_DIR, name + '.gz'), 0, count)
      image_data.write_idx(os.path.join(out_dir, name), records, gz=True)


def test_fashion_mnist_subset_end_to_end(tmp_path):
  _require_fashion_mnist()
  data = tmp_path / 'fashion'
  data.mkdir()
  _subset(str(data))
  result = subprocess.run(
      [GANPIPE, 'run', '--small', '--data.dataset', 'fashion-mnist', '--data.data_dir', str(data),
       '--paths.pipeline_root', str(tmp_path / 'pipeline'),
       '--paths.metadata_path', str(tmp_path / 'metadata.sqlite'),
       '--paths.serving_root', str(tmp_path / 'serving'), '--paths.hub_root', str(tmp_path / 'hub'),
       # The GAN has its own e2e test on digits; here it only needs to run through on 28x28.
       '--gan.epochs', '1', '--gan.steps_per_epoch', '50',
       '--generator_evaluation.num_samples', '100',
       # `--small` runs Beam in process; this run keeps the default's worker processes.
       '--beam.direct_running_mode', 'multi_processing', '--beam.direct_num_workers', '2'],
      capture_output=True, text=True, check=False, timeout=1500, stdin=subprocess.DEVNULL)
  assert result.returncode == 0, result.stdout + result.stderr
  assert f'data: {TRAIN + TEST} images (train {TRAIN}, eval {TEST}); 0 rejected' in result.stdout

  model = tf.saved_model.load(glob.glob(str(tmp_path / 'serving' / 'classifier' / '*'))[0])
  with gzip.open(os.path.join(builtin.FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')) as f:
    f.seek(16 + TEST * 784)  # held out: test images past the subset
    pixels = np.frombuffer(f.read(200 * 784), np.uint8).reshape(200, 28, 28, 1)
  labels = idx.read_records(os.path.join(builtin.FASHION_MNIST_DIR,
                                         't10k-labels-idx1-ubyte.gz'), TEST, TEST + 200)
  pngs = [tf.io.encode_png(p).numpy() for p in pixels]
  out = model.signatures['serving_default'](images=tf.constant(pngs))
  accuracy = float(np.mean(out['class_ids'].numpy() == labels))
  assert accuracy > 0.7, accuracy
  names = {n.decode() for n in out['class_names'].numpy()}
  assert names <= set(builtin.FASHION_MNIST_CLASSES) and len(names) >= 5
