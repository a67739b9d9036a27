"""`ganpipe compile-kubeflow`: the same `create_pipeline()`, compiled to a KFP v2 pipeline spec."""

import json
import os
from typing import List, Optional

import yaml

from ganpipe.pipeline import config as config_lib

# Object stores that TFX (tf.io.gfile) and TF Serving both read.
REMOTE_SCHEMES = ('gs://', 's3://', 'hdfs://')
RUNTIME_PARAMETERS = ('classifier-epochs', 'gan-epochs', 'generator-max-distance-ratio',
                      'generator-min-score-ratio')


def on_volume(path: str, kubeflow: config_lib.KubeflowConfig) -> bool:
  """Whether `path` lies on the volume claim mounted in every pipeline pod."""
  if not kubeflow.volume_claim:
    return False
  mount = kubeflow.volume_mount_path.rstrip('/')
  return path == mount or path.startswith(mount + '/')


def check_paths(config: config_lib.PipelineConfig) -> None:
  """Kubeflow pods cannot see this machine's disk: every root must be on an object store, or on
  the volume claim that `--kubeflow.volume_claim` mounts in every pod.

  Raises:
    config_lib.ConfigError: naming the path and what to pass instead.
  """
  mount = config.kubeflow.volume_mount_path.rstrip('/')
  for name in ('pipeline_root', 'serving_root', 'hub_root'):
    value = getattr(config.paths, name)
    if not value.startswith(REMOTE_SCHEMES) and not on_volume(value, config.kubeflow):
      where = (f'outside the volume mounted at {mount}' if config.kubeflow.volume_claim
               else 'on this machine')
      raise config_lib.ConfigError(
          f'paths.{name}', f'{value!r} is {where}, which Kubeflow pods cannot read',
          f'pass --paths.{name} gs://BUCKET/ganpipe/{name.split("_")[0]} (or s3://...), or '
          f'a path under --kubeflow.volume_mount_path with --kubeflow.volume_claim CLAIM')
  data_dir = config.data.data_dir
  if config.data.dataset not in ('digits',) and data_dir and \
     not data_dir.startswith(REMOTE_SCHEMES) and not on_volume(data_dir, config.kubeflow):
    raise config_lib.ConfigError(
        'data.data_dir', f'{data_dir!r} is on this machine',
        'copy the images to a bucket and pass --data.data_dir gs://BUCKET/images, or to the '
        'volume claim and pass a path under --kubeflow.volume_mount_path')


def beam_args_for_kubeflow(config: config_lib.PipelineConfig) -> List[str]:
  """The data components' Beam args: DirectRunner in the pod unless extra args pick a runner."""
  if any(arg.startswith('--runner') for arg in config.beam.extra_args):
    return list(config.beam.extra_args)
  return config.beam.pipeline_args()


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str = '') -> str:
  """Writes the PipelineJob (JSON) and its KFP package (`kfp_package_path`); returns the JSON's."""
  # pylint: disable=import-outside-toplevel
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from ganpipe.pipeline import pipeline as pipeline_lib
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
  write_kfp_package(output_path, config.kubeflow)
  return output_path


def kfp_package_path(job_path: str) -> str:
  return os.path.splitext(job_path)[0] + '.yaml'


def write_kfp_package(job_path: str,
                      kubeflow: Optional[config_lib.KubeflowConfig] = None) -> str:
  """Writes the pipeline package (IR YAML) that Kubeflow Pipelines' client and UI take.

  TFX writes a PipelineJob: the spec plus a runtime config, which Vertex AI Pipelines runs.
  Kubeflow Pipelines' open-source backend takes the bare PipelineSpec (its client refuses the
  JSON), so the runtime config's pipeline root and parameter values move into the spec as its
  default pipeline root and the parameters' defaults. With `kubeflow.volume_claim`, a second
  YAML document, the Kubernetes platform spec, mounts the claim in every container.

  Returns:
    The package's path: the JSON's, ending in `.yaml`.
  """
  with open(job_path) as f:
    job = json.load(f)
  spec = job['pipelineSpec']
  runtime = job.get('runtimeConfig', {})
  spec['defaultPipelineRoot'] = runtime['gcsOutputDirectory']
  parameters = spec['root'].get('inputDefinitions', {}).get('parameters', {})
  # TFX writes the deprecated typed values (`{"intValue": "8"}`); a default is a plain value.
  for name, typed in runtime.get('parameters', {}).items():
    (kind, value), = typed.items()
    parameters[name]['defaultValue'] = {'intValue': int, 'doubleValue': float,
                                        'stringValue': str}[kind](value)
  for name, value in runtime.get('parameterValues', {}).items():
    parameters[name]['defaultValue'] = value
  documents = [spec]
  if kubeflow is not None and kubeflow.volume_claim:
    documents.append(volume_platform_spec(spec, kubeflow))
  path = kfp_package_path(job_path)
  with open(path, 'w') as f:
    yaml.safe_dump_all(documents, f, sort_keys=False)
  return path


def volume_platform_spec(spec: dict, kubeflow: config_lib.KubeflowConfig) -> dict:
  """The kfp-kubernetes platform spec that mounts the volume claim in every container.

  The claim is named by the deprecated `constant` field, which every KFP v2 backend reads; older
  backends (KFP 2.2, for one) refuse the whole spec when they meet the newer `pvcNameParameter`.
  """
  mount = {'constant': kubeflow.volume_claim, 'mountPath': kubeflow.volume_mount_path}
  executors = {label: {'pvcMount': [dict(mount)]}
               for label, executor in spec['deploymentSpec']['executors'].items()
               if 'container' in executor}
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': executors}}}}


def runtime_defaults(config: config_lib.PipelineConfig):
  return {'classifier-epochs': config.classifier.epochs, 'gan-epochs': config.gan.epochs,
          'generator-max-distance-ratio': config.generator_evaluation.max_distance_ratio,
          'generator-min-score-ratio': config.generator_evaluation.min_score_ratio}
