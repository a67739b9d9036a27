"""Running the pipeline with TFX's Beam or local DAG runner, and summarising the run."""

import os
from typing import Optional, Tuple

import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration.beam import beam_dag_runner

from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen.sources import builtin
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import pipeline as pipeline_lib
from ganpipe.pipeline import run_summary


def preflight(config: config_lib.PipelineConfig) -> None:
  """Checks what can be checked before any component starts.

  Raises:
    ConfigError: a configured input does not exist.
  """
  data = config.data
  if data.data_dir and not tf.io.gfile.isdir(data.data_dir):
    problem = 'is a file, not a folder' if tf.io.gfile.exists(data.data_dir) else 'does not exist'
    raise config_lib.ConfigError('data.data_dir', f'folder {data.data_dir!r} {problem}',
                                 'pass --data.data_dir with an existing image folder')
  paths = config.paths
  for option, path, is_file in (('paths.pipeline_root', paths.pipeline_root, False),
                                ('paths.metadata_path', paths.metadata_path, True),
                                ('paths.serving_root', paths.serving_root, False),
                                ('paths.hub_root', paths.hub_root, False)):
    in_the_way = _file_in_the_way(os.path.dirname(path) if is_file else path)
    if in_the_way:
      raise config_lib.ConfigError(option, f'{path!r} cannot be written: {in_the_way!r} is a '
                                   'file, not a folder', f'pass --{option} with another path')
  if data.dataset == options.FASHION_MNIST and not data.data_dir and not tf.io.gfile.isdir(
      builtin.FASHION_MNIST_DIR):
    raise config_lib.ConfigError(
        'data.dataset', f'Fashion-MNIST is not installed at {builtin.FASHION_MNIST_DIR}',
        builtin.FASHION_MNIST_INSTALL)
  if data.schema_path and not tf.io.gfile.exists(data.schema_path):
    raise config_lib.ConfigError('data.schema_path', f'file {data.schema_path!r} does not exist',
                                 'pass --data.schema_path with a schema.pbtxt file, or omit it')


def _file_in_the_way(folder: str) -> Optional[str]:
  """The file that keeps local `folder` from being a folder, if any: it, or one above it."""
  if not folder or '://' in folder:
    return None
  path = os.path.abspath(folder)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return None if os.path.isdir(path) else path


def run(config: config_lib.PipelineConfig
        ) -> Tuple[Optional[run_summary.RunSummary], Optional[BaseException]]:
  """Runs the pipeline; returns the run summary and the error that stopped it, if any.

  Raises:
    ConfigError: a configured input does not exist.
  """
  preflight(config)
  metadata_path = config.paths.metadata_path
  if '://' not in metadata_path:
    os.makedirs(os.path.dirname(os.path.abspath(metadata_path)), exist_ok=True)
  pipeline = pipeline_lib.create_pipeline(config)
  if config.runner == 'beam':
    runner = beam_dag_runner.BeamDagRunner()
  else:
    runner = tfx.orchestration.LocalDagRunner()
  error = None
  try:
    runner.run(pipeline)
  except Exception as e:  # pylint: disable=broad-except
    error = e  # reported with the summary, which records which component failed
  return summarize(config), error


def summarize(config: config_lib.PipelineConfig) -> Optional[run_summary.RunSummary]:
  """The summary of the latest run of the configured pipeline, or None if it never ran."""
  if not os.path.exists(config.paths.metadata_path):
    return None
  node_ids = [node.id for node in pipeline_lib.create_pipeline(config).components]
  return run_summary.collect(os.path.abspath(config.paths.metadata_path), config.name, node_ids,
                             pipeline_lib.EVALUATED_MODELS, pipeline_lib.INGESTION_NODE)
