"""What importing `ganpipe` sets up before TensorFlow loads (ganpipe/__init__.py).

Each case runs in a fresh interpreter: TensorFlow takes these variables as it loads, so this
process (which has loaded it already) cannot show their effect. Whether oneDNN is on is read from
the kernel a Conv2D actually ran as (`_MklNativeConv2D` with it, `Conv2D` without), not from
IsMklEnabled(), which answers from the variable even when it was set too late to take effect.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

# The variables the package root sets by default, and the user's own values that must win.
ROOT_DEFAULTS = ('TF_ENABLE_ONEDNN_OPTS', 'TF_USE_LEGACY_KERAS')
PROBE = """
import json, os, sys, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter('always')
  if sys.argv[1] == 'tensorflow-first':
    import tensorflow as tf
    import ganpipe
  else:
    import ganpipe
    import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
v1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
  images = v1.placeholder(tf.float32, [1, 8, 8, 4])
  out = tf.nn.relu(tf.nn.conv2d(images, tf.ones([3, 3, 4, 4]), 1, 'SAME'))
metadata = v1.RunMetadata()
with v1.Session(graph=graph) as session:
  session.run(out, {images: np.ones([1, 8, 8, 4])}, run_metadata=metadata,
              options=v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE))
kernels = {node.timeline_label.split(' = ')[-1].split('(')[0]
           for device in metadata.step_stats.dev_stats for node in device.node_stats}
print(json.dumps({'onednn': '_MklNativeConv2D' in kernels,
                  'conv_kernels': sorted(k for k in kernels if 'Conv2D' in k),
                  'flag': bool(_pywrap_util_port.IsMklEnabled()),
                  'keras': tf.keras.__name__,
                  'env': os.environ.get('TF_ENABLE_ONEDNN_OPTS'),
                  'warnings': [str(w.message) for w in caught
                               if 'ganpipe' in str(w.message)]}))
"""
X86_64 = platform.machine().lower() in ('x86_64', 'amd64')


def _probe(order: str = 'ganpipe-first', **env_overrides) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in ROOT_DEFAULTS}
  env.update(env_overrides, TF_CPP_MIN_LOG_LEVEL='2')
  completed = subprocess.run([sys.executable, '-c', PROBE, order], env=env, capture_output=True,
                             text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def unset():
  return _probe()


def test_onednn_is_on_by_default_on_x86_64_whatever_the_cpu(unset):
  # TensorFlow's own default depends on the CPU's features (DefaultOneDnnPolicy in
  # tensorflow/core/util/port.cc); on x86-64 the package root turns oneDNN on regardless.
  if X86_64:
    assert (unset['onednn'], unset['env']) == (True, '1'), unset['conv_kernels']
  else:
    assert unset['env'] is None


def test_keras_2_is_what_tensorflow_loads_after_ganpipe(unset):
  assert unset['keras'].startswith('tf_keras')


@pytest.mark.parametrize('value,expected', [('0', False), ('1', True)])
def test_the_users_own_onednn_setting_wins(value, expected):
  result = _probe(TF_ENABLE_ONEDNN_OPTS=value)
  assert result['env'] == value
  assert result['onednn'] is expected


def test_imported_before_tensorflow_ganpipe_warns_of_nothing(unset):
  assert unset['warnings'] == []


@pytest.mark.skipif(not X86_64, reason='ganpipe sets oneDNN on x86-64 only')
def test_imported_after_tensorflow_ganpipe_says_oneDNN_is_as_tensorflow_chose():
  result = _probe('tensorflow-first')
  [warning] = result['warnings']
  assert 'TensorFlow was imported before ganpipe' in warning
  assert 'import ganpipe before TensorFlow' in warning
  # Why it warns: the variable, set now, is reported by IsMklEnabled() but changes no kernel
  # (on CPUs where TensorFlow itself does not choose oneDNN).
  assert (result['env'], result['flag']) == ('1', True)


@pytest.mark.skipif(not X86_64, reason='ganpipe sets oneDNN on x86-64 only')
def test_an_explicit_setting_silences_the_import_order_warning():
  assert _probe('tensorflow-first', TF_ENABLE_ONEDNN_OPTS='1')['warnings'] == []
