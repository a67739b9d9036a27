"""Beam executors skip TFX's package for local runners only; TFX's own executor class is used."""

import os
import tempfile
import threading

import pytest
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from ganpipe.components import beam_staging
from ganpipe.pipeline import config as config_lib


def _executor_args(beam_args):
  """The Beam args of StatisticsGen's executor (a BaseBeamExecutor) after its constructor."""
  context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args))
  return statistics_gen_executor.Executor(context)._beam_pipeline_args  # pylint: disable=W0212


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
  """tempfile's folder, where TFX builds its package, moved to an empty folder of the test's."""
  folder = tmp_path / 'tmp'
  folder.mkdir()
  monkeypatch.setattr(tempfile, 'tempdir', str(folder))
  return folder


@pytest.mark.parametrize('beam_args, runner', [
    ([], 'DirectRunner'),
    (['--runner=FnApiRunner'], 'FnApiRunner'),
    (['--runner', 'DirectRunner'], 'DirectRunner'),
    (['--runner=FnApiRunner', '--runner=DataflowRunner'], 'DataflowRunner'),
    (['--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner'], 'FnApiRunner'),
])
def test_the_runner_is_the_one_beam_would_use(beam_args, runner):
  assert beam_staging.runner_of(beam_args) == runner


def test_the_pipeline_s_own_beam_args_name_a_runner_that_needs_no_package():
  assert not beam_staging.needs_tfx_package(config_lib.BeamConfig().pipeline_args())
  assert beam_staging.needs_tfx_package(['--runner=DataflowRunner'])
  assert beam_staging.needs_tfx_package(['--runner=PrismRunner'])


def test_with_a_local_runner_tfx_s_executor_builds_nothing(temp_dir):
  args = config_lib.BeamConfig().pipeline_args()
  with beam_staging.no_tfx_package_for_local_runners():
    executor_args = _executor_args(args)
  assert not [a for a in executor_args if a.startswith('--extra_package')], executor_args
  assert executor_args[:len(args)] == args
  assert not os.listdir(temp_dir)


def test_with_a_remote_runner_tfx_still_packages_itself(temp_dir):
  """The control: the same constructor with a runner that stages builds TFX's sdist."""
  with beam_staging.no_tfx_package_for_local_runners():
    executor_args = _executor_args(['--runner=DataflowRunner'])
  packages = [a.split('=', 1)[1] for a in executor_args if a.startswith('--extra_package=')]
  assert len(packages) == 1, executor_args
  assert os.path.basename(packages[0]).startswith('tfx_ephemeral-')
  assert packages[0].startswith(str(temp_dir)) and os.path.isfile(packages[0])


def test_tfx_s_function_is_back_after_the_last_of_nested_and_threaded_uses():
  original = dependency_utils.make_beam_dependency_flags
  inside = []

  def use():
    with beam_staging.no_tfx_package_for_local_runners():
      inside.append(beam_staging.installed())

  with beam_staging.no_tfx_package_for_local_runners():
    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    assert beam_staging.installed()
  assert inside == [True] * 4
  assert not beam_staging.installed()
  assert dependency_utils.make_beam_dependency_flags is original


def test_a_call_through_the_replacement_after_the_last_exit_still_reaches_tfx(temp_dir):
  """A thread that looked the function up inside the block may call it after the block ends."""
  with beam_staging.no_tfx_package_for_local_runners():
    looked_up = dependency_utils.make_beam_dependency_flags
  assert looked_up(['--runner=DirectRunner']) == ['--runner=DirectRunner']
  flags = looked_up(['--runner=DataflowRunner'])
  assert any(flag.startswith('--extra_package=') for flag in flags), flags
