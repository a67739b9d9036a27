"""Every benchmark imports ganpipe before TensorFlow, TFX or Beam (see ganpipe/__init__.py).

Imported after TensorFlow, the package root's TF_ENABLE_ONEDNN_OPTS changes no kernel: on 2 AVX2
CPUs benchmarks/gan_training_time.py, which imported TensorFlow first, timed the 28x28x1 DCGAN at
0.52 s a step against 0.27 s with the variable in place before TensorFlow loaded.
"""

import ast
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks'
# Packages that load TensorFlow as they are imported.
LOADS_TENSORFLOW = ('tensorflow', 'tf_keras', 'tfx', 'apache_beam', 'tensorflow_transform',
                    'tensorflow_model_analysis', 'tensorflow_hub', 'tensorflow_serving')


def _top_level_imports(path):
  """Module-level imports in order, each as the top package it names."""
  for node in ast.parse(path.read_text()).body:
    if isinstance(node, ast.Import):
      yield from (alias.name.split('.')[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      yield node.module.split('.')[0]


@pytest.mark.parametrize('path', sorted(BENCHMARKS.glob('*.py')), ids=lambda path: path.name)
def test_ganpipe_comes_before_anything_that_loads_tensorflow(path):
  imports = list(_top_level_imports(path))
  loads = [name for name in imports if name in LOADS_TENSORFLOW]
  if loads:
    assert 'ganpipe' in imports, f'{path.name} imports {loads[0]} and never ganpipe'
    assert imports.index('ganpipe') < imports.index(loads[0]), (
        f'{path.name} imports {loads[0]} before ganpipe')


def test_the_check_sees_an_import_out_of_order(tmp_path):
  script = tmp_path / 'script.py'
  script.write_text('import os\nimport tensorflow as tf\nfrom ganpipe.models import hparams\n')
  imports = list(_top_level_imports(script))
  assert imports.index('tensorflow') < imports.index('ganpipe')
