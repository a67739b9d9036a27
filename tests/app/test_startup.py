"""The CLI starts without TFX: parsing, `--help` and configuration errors load none of it.

Each case runs in a fresh interpreter, since this test process may have imported anything.
benchmarks/cli_startup.py measures the times; this pins what makes them short.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).parents[2]
HEAVY = ('tensorflow', 'tfx', 'apache_beam', 'ml_metadata', 'tensorflow_transform')


def _imports_after(argv, tmp_path) -> dict:
  """Runs `ganpipe <argv>` in a fresh interpreter; its exit code and the heavy modules loaded."""
  script = f'''
import json, sys
from ganpipe.app import cli
try:
  code = cli.main({argv!r})
except SystemExit as exited:
  code = exited.code
print(json.dumps({{'code': code, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, timeout=120, cwd=tmp_path, env={
                              'PYTHONPATH': str(REPO), 'PATH': '/usr/bin:/bin'})
  return {**json.loads(result.stdout.splitlines()[-1]), 'stderr': result.stderr}


def test_importing_the_cli_and_parsing_every_command_loads_no_tfx(tmp_path):
  script = f'''
import sys
from ganpipe.app import cli
parser = cli._build_parser()
for argv in (['run', '--small'], ['status'], ['lineage', 'x'], ['compile-kubeflow'],
             ['publish', 'x', '--to', 'y'], ['demo'], ['models'], ['classify', 'a.png'],
             ['generate', '--out', 'x.png'], ['serve', '--model_base_path', 'x']):
  parser.parse_args(argv)
print([m for m in {HEAVY!r} if m in sys.modules])
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, timeout=120, cwd=tmp_path, env={'PYTHONPATH': str(REPO)})
  assert result.stdout.strip() == '[]', result.stderr


@pytest.mark.parametrize('case', ['missing data folder', 'empty data folder', 'image size',
                                  'bad value', 'status without a store',
                                  'lineage without a store', 'kubeflow without an image'])
def test_configuration_errors_are_reported_before_tfx_loads(case, tmp_path):
  (tmp_path / 'empty').mkdir()
  argv = {
      'missing data folder': ['run', '--data.dataset', 'folder', '--data.data_dir', 'nowhere'],
      'empty data folder': ['run', '--data.dataset', 'folder', '--data.data_dir', 'empty'],
      'image size': ['run', '--data.dataset', 'folder', '--data.data_dir', 'empty',
                     '--data.image_size', '25,25'],
      'bad value': ['run', '--classifier.epochs', 'ten'],
      'status without a store': ['status'],
      'lineage without a store': ['lineage', 'outputs/serving/classifier/1'],
      'kubeflow without an image': ['compile-kubeflow', '--paths.pipeline_root', 'gs://b/p'],
  }[case]
  found = _imports_after(argv, tmp_path)
  assert found['code'] in (1, 2), found['stderr']
  assert found['stderr'].startswith('ganpipe: error: ') and found['stderr'].count('\n') == 1, (
      found['stderr'])
  assert found['loaded'] == [], found['stderr']


def test_a_client_command_against_no_server_fails_before_tensorflow_loads(tmp_path):
  image = tmp_path / 'a.png'
  image.write_bytes(b'not read by anyone')
  with socket_on_a_free_port() as port:  # bound, not listening: connections are refused
    found = _imports_after(['classify', '--target', f'127.0.0.1:{port}', str(image)], tmp_path)
  assert found['code'] == 1
  assert found['stderr'] == (
      f'ganpipe: error: cannot connect to 127.0.0.1:{port}: Connection refused (gave up after '
      f'4 attempts). Is the server running at 127.0.0.1:{port}?\n')
  assert found['loaded'] == []


class socket_on_a_free_port:  # pylint: disable=invalid-name
  """A port that nothing listens on for as long as the block runs."""

  def __enter__(self) -> int:
    import socket  # pylint: disable=import-outside-toplevel
    self._socket = socket.socket()
    self._socket.bind(('127.0.0.1', 0))
    return self._socket.getsockname()[1]

  def __exit__(self, *exc_info):
    self._socket.close()
