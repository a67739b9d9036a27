"""End to end: the failures of a run that `ganpipe` reports in one line, without --verbose."""

import os
import subprocess
import sys

import pytest

from tests import image_data

pytestmark = pytest.mark.e2e


def _ganpipe(root, *flags):
  paths = ['--paths.pipeline_root', str(root / 'pipeline'),
           '--paths.metadata_path', str(root / 'metadata.sqlite'),
           '--paths.serving_root', str(root / 'serving'), '--paths.hub_root', str(root / 'hub')]
  # As a user runs it: conftest.py's TF_CPP_MIN_LOG_LEVEL would keep TensorFlow's C++ errors
  # at start-up, which the CLI hides by default.
  env = {key: value for key, value in os.environ.items() if key != 'TF_CPP_MIN_LOG_LEVEL'}
  return subprocess.run([sys.executable, '-m', 'ganpipe.app.cli', 'run', '--small', *paths,
                         *flags], capture_output=True, text=True, check=False, timeout=600,
                        stdin=subprocess.DEVNULL, env=env)


def test_ingestion_over_the_bad_fraction_limit_is_one_line(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data), {'digit_0': 10, 'digit_1': 10})
  for index in range(3):
    (data / 'digit_0' / f'broken{index}.png').write_bytes(b'not a png')
  result = _ganpipe(tmp_path, '--data.dataset', 'folder', '--data.data_dir', str(data))
  assert result.returncode == 1, result.stderr
  # Beam warns that the folder source's file lister both yields and returns (ingestion's code).
  lines = [line for line in result.stderr.splitlines()
           if 'Using yield and return in the process method' not in line]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('ganpipe: error: image_example_gen failed: ingestion rejected 3 of '
                             '23 records'), result.stderr
  assert lines[0].endswith('(run with --verbose for the traceback)')
  assert 'image_example_gen                   FAILED' in result.stdout
