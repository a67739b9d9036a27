"""`ganpipe compile-kubeflow`: the same `create_pipeline()`, compiled to a KFP v2 pipeline package.

The package targets the open-source Kubeflow Pipelines backend, 2.0.0 to 2.17.0 (the source read
is kubeflow/pipelines at those tags), and the PipelineJob beside it Vertex AI Pipelines.
"""

import json
import os
import re
from typing import List, Optional

import yaml

from ganpipe.pipeline import config as config_lib

# Every 2.x backend refuses any other schema at upload: "KFP only supports schema version 2.1.0"
# (backend/src/apiserver/template/v2_template.go, NewV2SpecTemplate). 2.1.0 also types the
# parameters and passes constants as `runtimeValue.constant`, the only form the driver takes
# (backend/src/v2/driver/resolve.go, resolveInputParameter).
SCHEMA_VERSION = '2.1.0'
# Every task runs this wrapper of TFX's entry point (see entrypoint.py).
ENTRYPOINT = ['python', '-m', 'ganpipe.kubeflow.entrypoint']
RUNTIME_PARAMETERS = ('classifier-epochs', 'gan-epochs', 'generator-max-distance-ratio',
                      'generator-min-score-ratio')
# Where TensorFlow 2.16 (the lock) reads and writes, besides local paths: its GCS filesystem.
OBJECT_STORE = 'gs://'
# Why each other object store is refused: the tasks read and write roots through tf.io.gfile.
REFUSED_SCHEMES = {
    's3://': 'the locked TensorFlow 2.16 has no S3 filesystem (tensorflow-io 0.37.1 adds one, '
             'but aborts every process at exit with TF 2.16.2: tensorflow/io#2039)',
    'minio://': 'TensorFlow reads no minio:// URIs (MinIO is reachable only as s3://, which the '
                'locked TensorFlow 2.16 cannot read)',
    'hdfs://': 'the image has no Hadoop client for TensorFlow\'s HDFS filesystem',
}
# The backend refuses other pipeline names at upload (ValidatePipelineName in
# backend/src/apiserver/common/utils.go): no dots, no capitals, no underscores.
PIPELINE_NAME = re.compile(r'[a-z0-9][a-z0-9-]{0,127}')


def on_volume(path: str, kubeflow: config_lib.KubeflowConfig) -> bool:
  """Whether `path` lies on the volume claim mounted in every pipeline pod."""
  if not kubeflow.volume_claim:
    return False
  mount = kubeflow.volume_mount_path.rstrip('/')
  return path == mount or path.startswith(mount + '/')


def _refused_scheme(path: str) -> Optional[str]:
  return next((reason for scheme, reason in REFUSED_SCHEMES.items() if path.startswith(scheme)),
              None)


def check_config(config: config_lib.PipelineConfig) -> None:
  """Refuses what a KFP backend or the tasks' TensorFlow cannot use, naming the fix.

  - The pipeline name must pass the backend's upload check.
  - The pipeline root must be gs://: the KFP launcher parses it as a bucket
    (objectstore.ParseBucketConfig in backend/src/v2/objectstore/config.go takes gs://, s3://
    and minio:// only), so it cannot be on the volume claim, and TensorFlow writes gs:// alone.
  - The serving and hub roots and the data folder: gs://, or on the mounted volume claim.
  - The pipeline image must be named: there is no default. TFX's own (KubeflowV2DagRunnerConfig
    without default_image) lacks this package, so every task would fail on import, and a
    placeholder would compile and upload, then leave every pod in ImagePullBackOff. KFP itself
    has no default either: a container component's image is required (kfp/dsl/structures.py,
    ContainerSpecImplementation.image).

  Raises:
    config_lib.ConfigError: naming the option and what to pass instead.
  """
  if not config.kubeflow.image:
    raise config_lib.ConfigError(
        'kubeflow.image', 'no pipeline image given: every task runs ganpipe in it',
        'build ganpipe/kubeflow/Dockerfile, push it where the cluster pulls from, and pass '
        '--kubeflow.image REGISTRY/ganpipe:TAG')
  if not PIPELINE_NAME.fullmatch(config.name):
    raise config_lib.ConfigError(
        'name', f'Kubeflow Pipelines refuses the pipeline name {config.name!r} at upload',
        'pass --name with lower-case letters, digits and -, starting with a letter or digit')
  root = config.paths.pipeline_root
  if not root.startswith(OBJECT_STORE):
    reason = _refused_scheme(root) or (
        'the KFP launcher takes only a bucket (gs://, s3://, minio://) as the pipeline root, so '
        'it cannot be on the volume claim' if on_volume(root, config.kubeflow)
        else 'it is on this machine, which Kubeflow pods cannot read')
    raise config_lib.ConfigError(
        'paths.pipeline_root', f'{root!r} cannot be the pipeline root: {reason}',
        'pass --paths.pipeline_root gs://BUCKET/ganpipe/pipeline')
  mount = config.kubeflow.volume_mount_path.rstrip('/')
  for option, value in (('paths.serving_root', config.paths.serving_root),
                        ('paths.hub_root', config.paths.hub_root),
                        ('data.data_dir', config.data.data_dir)):
    if not value or value.startswith(OBJECT_STORE) or on_volume(value, config.kubeflow):
      continue
    reason = _refused_scheme(value) or (
        f'it is outside the volume mounted at {mount}' if config.kubeflow.volume_claim
        else 'it is on this machine, which Kubeflow pods cannot read')
    raise config_lib.ConfigError(
        option, f'{value!r} cannot be used on Kubeflow: {reason}',
        f'pass --{option} gs://BUCKET/..., or a path under --kubeflow.volume_mount_path with '
        '--kubeflow.volume_claim CLAIM')


def beam_args_for_kubeflow(config: config_lib.PipelineConfig) -> List[str]:
  """The data tasks' Beam args: DirectRunner in the pod unless extra args pick a runner.

  The DirectRunner's workers are bounded by the vCPUs a data task requests: its default, one per
  core, would be one per core of the node.
  """
  if any(arg.startswith('--runner') for arg in config.beam.extra_args):
    return list(config.beam.extra_args)
  workers = config.beam.direct_num_workers or config.kubeflow.data_beam_workers
  return [arg if not arg.startswith('--direct_num_workers=') else f'--direct_num_workers={workers}'
          for arg in config.beam.pipeline_args()]


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str = '') -> str:
  """Writes the PipelineJob (JSON) and its KFP package (`kfp_package_path`); returns the JSON's.

  Raises:
    config_lib.ConfigError: a root, the data folder or the name cannot work on Kubeflow.
  """
  check_config(config)  # before TFX loads, which takes half a minute
  # pylint: disable=import-outside-toplevel
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from ganpipe.pipeline import pipeline as pipeline_lib
  # pylint: enable=import-outside-toplevel
  output_path = output_path or config.kubeflow.output_path
  pipeline = pipeline_lib.create_pipeline(config, beam_args_for_kubeflow(config),
                                          target=pipeline_lib.KUBEFLOW)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          display_name=config.name, default_image=config.kubeflow.image,
          default_commands=ENTRYPOINT, use_pipeline_spec_2_1=True),
      output_dir=os.path.dirname(os.path.abspath(output_path)),
      output_filename=os.path.basename(output_path))
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  # TFX writes the parameters' types; their defaults go in the runtime config, from our config.
  runner.run(pipeline, parameter_values=runtime_defaults(config), write_out=True)
  _request_data_resources(output_path, config.kubeflow)
  write_kfp_package(output_path, config.kubeflow)
  return output_path


def _request_data_resources(job_path: str, kubeflow: config_lib.KubeflowConfig) -> None:
  """Gives every container without resource requests the data tasks' own.

  TFX compiles a FileBasedExampleGen (ImageExampleGen) without its platform config
  (StepBuilder._build_file_based_example_gen_spec), so its pod would request nothing.
  """
  with open(job_path) as f:
    job = json.load(f)
  for executor in job['pipelineSpec']['deploymentSpec']['executors'].values():
    if 'container' in executor and 'resources' not in executor['container']:
      executor['container']['resources'] = {'cpuLimit': kubeflow.data_cpu,
                                            'memoryLimit': kubeflow.data_memory_gb}
  with open(job_path, 'w') as f:
    json.dump(job, f, indent=2, sort_keys=True)


def kfp_package_path(job_path: str) -> str:
  return os.path.splitext(job_path)[0] + '.yaml'


def write_kfp_package(job_path: str,
                      kubeflow: Optional[config_lib.KubeflowConfig] = None) -> str:
  """Writes the pipeline package (IR YAML) that Kubeflow Pipelines' client and UI take.

  TFX writes a PipelineJob: the spec plus a runtime config, which Vertex AI Pipelines runs.
  Kubeflow Pipelines' open-source backend takes the bare PipelineSpec (its client refuses the
  JSON), so the runtime parameters' values move into the spec as their defaults. The pipeline
  root goes in as `defaultPipelineRoot` for the KFP client and UI, which offer it when a run is
  created; the backend itself never reads it, so a run must be given its root. With
  `kubeflow.volume_claim`, a second YAML document, the Kubernetes platform spec, mounts the
  claim in every container.

  Returns:
    The package's path: the JSON's, ending in `.yaml`.
  """
  with open(job_path) as f:
    job = json.load(f)
  spec = job['pipelineSpec']
  runtime = job.get('runtimeConfig', {})
  spec['defaultPipelineRoot'] = runtime['gcsOutputDirectory']
  parameters = spec['root'].get('inputDefinitions', {}).get('parameters', {})
  # A 2.0.0 spec's runtime config holds the deprecated typed values (`{"intValue": "8"}`).
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

  The claim is named by the deprecated `constant` field, which every KFP v2 backend reads; the
  2.0.0 backend knows no other (`pvcNameParameter` came later: backend/src/v2/driver/k8s.go,
  makeVolumeMountPatch).
  """
  mount = {'constant': kubeflow.volume_claim, 'mountPath': kubeflow.volume_mount_path}
  executors = {label: {'pvcMount': [dict(mount)]}
               for label, executor in spec['deploymentSpec']['executors'].items()
               if 'container' in executor}
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': executors}}}}


def runtime_defaults(config: config_lib.PipelineConfig):
  return {'classifier-epochs': config.classifier.epochs, 'gan-epochs': config.gan_epochs(),
          'generator-max-distance-ratio': config.generator_evaluation.max_distance_ratio,
          'generator-min-score-ratio': config.generator_evaluation.min_score_ratio}
