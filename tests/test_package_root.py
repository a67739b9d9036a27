"""What importing `ganpipe` sets up before TensorFlow loads (ganpipe/__init__.py).

Each case runs in a fresh interpreter: TensorFlow reads these variables once, when it first
needs them, so this process (which has loaded it already) cannot show their effect.
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
import json, os
import ganpipe
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
print(json.dumps({'onednn': bool(_pywrap_util_port.IsMklEnabled()),
                  'keras': tf.keras.__name__,
                  'env': os.environ.get('TF_ENABLE_ONEDNN_OPTS')}))
"""
X86_64 = platform.machine().lower() in ('x86_64', 'amd64')


def _probe(**env_overrides) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in ROOT_DEFAULTS}
  env.update(env_overrides, TF_CPP_MIN_LOG_LEVEL='2')
  completed = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True,
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
    assert (unset['onednn'], unset['env']) == (True, '1')
  else:
    assert unset['env'] is None


def test_keras_2_is_what_tensorflow_loads_after_ganpipe(unset):
  assert unset['keras'].startswith('tf_keras')


@pytest.mark.parametrize('value,expected', [('0', False), ('1', True)])
def test_the_users_own_onednn_setting_wins(value, expected):
  result = _probe(TF_ENABLE_ONEDNN_OPTS=value)
  assert result['env'] == value
  assert result['onednn'] is expected
