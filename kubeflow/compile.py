"""`ganpipe compile-kubeflow`: the same `create_pipeline()`, compiled to a KFP v2 pipeline spec."""

import os
from typing import List

from pipeline import config as config_lib

# Object stores that TFX (tf.io.gfile) and TF Serving both read.
REMOTE_SCHEMES = ('gs://', 's3://', 'hdfs://')
RUNTIME_PARAMETERS = ('classifier-epochs', 'gan-epochs', 'generator-max-distance',
                      'generator-min-score-ratio')


def check_paths(config: config_lib.PipelineConfig) -> None:
  """Kubeflow pods cannot see this machine's disk: every root must be on an object store.

  Raises:
    config_lib.ConfigError: naming the path and what to pass instead.
  """
  for name in ('pipeline_root', 'serving_root', 'hub_root'):
    value = getattr(config.paths, name)
    if not value.startswith(REMOTE_SCHEMES):
      raise config_lib.ConfigError(
          f'paths.{name}', f'{value!r} is on this machine, which Kubeflow pods cannot read',
          f'pass --paths.{name} gs://BUCKET/ganpipe/{name.split("_")[0]} (or s3://...)')
  if config.data.dataset not in ('digits',) and config.data.data_dir and \
     not config.data.data_dir.startswith(REMOTE_SCHEMES):
    raise config_lib.ConfigError(
        'data.data_dir', f'{config.data.data_dir!r} is on this machine',
        'copy the images to a bucket and pass --data.data_dir gs://BUCKET/images')


def beam_args_for_kubeflow(config: config_lib.PipelineConfig) -> List[str]:
  """The data components' Beam args: DirectRunner in the pod unless extra args pick a runner."""
  if any(arg.startswith('--runner') for arg in config.beam.extra_args):
    return list(config.beam.extra_args)
  return config.beam.pipeline_args()


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str = '') -> str:
  """Writes the KFP v2 pipeline spec (JSON) and returns its path."""
  # pylint: disable=import-outside-toplevel
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from pipeline import pipeline as pipeline_lib
  # pylint: enable=import-outside-toplevel
  check_paths(config)
  output_path = output_path or config.kubeflow.output_path
  pipeline = pipeline_lib.create_pipeline(config, beam_args_for_kubeflow(config),
                                          target=pipeline_lib.KUBEFLOW)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          display_name=config.name, default_image=config.kubeflow.image),
      output_dir=os.path.dirname(os.path.abspath(output_path)),
      output_filename=os.path.basename(output_path))
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  # TFX writes the parameters' types; their defaults go in the runtime config, from our config.
  runner.run(pipeline, parameter_values=runtime_defaults(config), write_out=True)
  return output_path


def runtime_defaults(config: config_lib.PipelineConfig):
  return {'classifier-epochs': config.classifier.epochs, 'gan-epochs': config.gan.epochs,
          'generator-max-distance': config.generator_evaluation.max_distance,
          'generator-min-score-ratio': config.generator_evaluation.min_score_ratio}
