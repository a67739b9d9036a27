"""The compiled KFP v2 spec: GPU requests, images, runtime parameters, and no local paths."""

import json
import os

from google.protobuf import json_format
from kfp import components
from kfp.client import client as kfp_client
import pytest

from ganpipe.kubeflow import compile as kubeflow_compile
from ganpipe.models import hparams
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides

IMAGE = 'registry.example.com/ganpipe:test'


def _config(**overrides):
  config = config_lib.get_config()
  return config_overrides.with_overrides(config, {
      'paths.pipeline_root': 'gs://bucket/ganpipe/pipeline',
      'paths.serving_root': 'gs://bucket/ganpipe/serving',
      'paths.hub_root': 'gs://bucket/ganpipe/hub',
      'kubeflow.image': IMAGE,
      **overrides})


@pytest.fixture(scope='module')
def compiled_path(tmp_path_factory):
  return kubeflow_compile.compile_pipeline(_config(),
                                           str(tmp_path_factory.mktemp('kfp') / 'ganpipe.json'))


@pytest.fixture(scope='module')
def compiled(compiled_path):
  with open(compiled_path) as f:
    text = f.read()
  return json.loads(text), text


@pytest.fixture(scope='module')
def package(compiled_path):
  """The KFP package, read by the KFP client's own loader, which uploads it to Kubeflow."""
  path = kubeflow_compile.kfp_package_path(compiled_path)
  return kfp_client._extract_pipeline_yaml(path)  # pylint: disable=protected-access


def _executors(spec):
  return spec['pipelineSpec']['deploymentSpec']['executors']


def _executor_of(spec, task):
  return spec['pipelineSpec']['root']['dag']['tasks'][task]['componentRef']['name']


def _container(spec, task):
  component = spec['pipelineSpec']['components'][_executor_of(spec, task)]
  return _executors(spec)[component['executorLabel']]['container']


@pytest.mark.parametrize('trainer', ['classifier_trainer', 'gan_trainer'])
def test_both_trainers_request_gpus_cpu_and_memory(compiled, trainer):
  spec, _ = compiled
  resources = _container(spec, trainer)['resources']
  assert resources['accelerator'] == {'type': 'nvidia.com/gpu', 'count': '1'}
  assert resources['cpuLimit'] == 8.0 and resources['memoryLimit'] == 32.0


def test_every_other_task_requests_the_data_tasks_cpu_and_memory_and_no_gpu(compiled):
  spec, _ = compiled
  tasks = [task for task in spec['pipelineSpec']['root']['dag']['tasks']
           if task not in ('classifier_trainer', 'gan_trainer')]
  assert len(tasks) == 14  # the data tasks, drift_validator among them
  for task in tasks:
    resources = _container(spec, task)['resources']
    assert resources == {'cpuLimit': 2.0, 'memoryLimit': 8.0}, task


def test_the_beam_workers_are_bounded_by_the_data_tasks_cpus():
  config = _config(**{'kubeflow.data_cpu': 3.0})
  assert '--direct_num_workers=3' in kubeflow_compile.beam_args_for_kubeflow(config)
  pinned = _config(**{'beam.direct_num_workers': 1})
  assert '--direct_num_workers=1' in kubeflow_compile.beam_args_for_kubeflow(pinned)


def test_every_container_runs_our_image_and_our_entry_point(compiled):
  spec, _ = compiled
  containers = [e['container'] for e in _executors(spec).values() if 'container' in e]
  assert len(containers) == 16
  assert {c['image'] for c in containers} == {IMAGE}
  assert all(c['command'] == ['python', '-m', 'ganpipe.kubeflow.entrypoint'] for c in containers)
  # Each passes its component's input definitions, whose declared artifact types the entry point
  # gives untyped inputs.
  for task in spec['pipelineSpec']['root']['dag']['tasks']:
    args = _container(spec, task)['args']
    declared = json.loads(args[args.index('--json_serialized_inputs_spec_args') + 1])
    component = spec['pipelineSpec']['components'][_executor_of(spec, task)]
    assert declared == component.get('inputDefinitions', {}), task
  statistics = _container(spec, 'statistics_gen')['args']
  declared = json.loads(statistics[statistics.index('--json_serialized_inputs_spec_args') + 1])
  assert 'title: tfx.Examples' in declared['artifacts']['examples']['artifactType'][
      'instanceSchema']


def test_the_spec_is_2_1_0_with_typed_parameters_and_constants(compiled):
  spec, text = compiled
  assert spec['pipelineSpec']['schemaVersion'] == '2.1.0'
  for component in spec['pipelineSpec']['components'].values():
    for parameter in component.get('inputDefinitions', {}).get('parameters', {}).values():
      assert parameter['parameterType'] in ('STRING', 'NUMBER_INTEGER', 'NUMBER_DOUBLE')
  assert 'constantValue' not in text and '"constant"' in text


def test_every_pipeline_node_is_a_task(compiled):
  spec, _ = compiled
  tasks = set(spec['pipelineSpec']['root']['dag']['tasks'])
  for node in ('image_example_gen', 'classifier_trainer', 'gan_trainer', 'generator_evaluator',
               'classifier_infra_validator', 'generator_infra_validator', 'classifier_pusher',
               'generator_pusher', 'hub_publisher'):
    assert node in tasks


def test_runtime_parameters_are_declared_with_defaults(compiled):
  spec, _ = compiled
  parameters = spec['pipelineSpec']['root']['inputDefinitions']['parameters']
  assert set(kubeflow_compile.RUNTIME_PARAMETERS) <= set(parameters)
  assert {name: parameters[name]['parameterType'] for name in
          kubeflow_compile.RUNTIME_PARAMETERS} == {
              'classifier-epochs': 'NUMBER_INTEGER', 'gan-epochs': 'NUMBER_INTEGER',
              'generator-max-distance-ratio': 'NUMBER_DOUBLE',
              'generator-min-score-ratio': 'NUMBER_DOUBLE'}
  defaults = spec['runtimeConfig']['parameterValues']
  config = config_lib.get_config()
  # The images (digits, 8x8) pick the dense GAN, whose budget is its own.
  assert defaults['gan-epochs'] == config.gan_epochs() == hparams.EPOCHS[hparams.DENSE]
  assert defaults['classifier-epochs'] == config.classifier.epochs
  assert defaults['generator-max-distance-ratio'] == (
      config.generator_evaluation.max_distance_ratio)


def test_the_kfp_package_is_the_same_spec_with_its_root_and_defaults(compiled, package):
  job, _ = compiled
  spec = json_format.MessageToDict(package.pipeline_spec)
  assert spec['defaultPipelineRoot'] == job['runtimeConfig']['gcsOutputDirectory']
  parameters = spec['root']['inputDefinitions']['parameters']
  for name, value in job['runtimeConfig']['parameterValues'].items():
    assert parameters[name]['defaultValue'] == value, name
    del parameters[name]['defaultValue']
  del spec['defaultPipelineRoot']
  assert spec == job['pipelineSpec']
  assert package.platform_spec == type(package.platform_spec)()


def test_no_local_path_leaks_into_the_spec(compiled):
  _, text = compiled
  for local in (os.getcwd(), os.path.expanduser('~'), '/tmp/', 'outputs/'):
    assert local not in text, local
  assert 'gs://bucket/ganpipe/pipeline' in text


def test_local_paths_are_refused_with_the_flag_to_fix(tmp_path):
  config = config_overrides.with_overrides(_config(), {'paths.serving_root': 'outputs/serving'})
  with pytest.raises(config_lib.ConfigError, match='paths.serving_root.*gs://BUCKET'):
    kubeflow_compile.compile_pipeline(config, str(tmp_path / 'x.json'))


def test_kfps_own_component_loader_reads_the_package(compiled_path):
  # The 2.0.0 package made it raise KeyError: 'artifactType'.
  component = components.load_component_from_file(kubeflow_compile.kfp_package_path(
      compiled_path))
  assert component.name == 'ganpipe'
  assert set(kubeflow_compile.RUNTIME_PARAMETERS) <= set(component.component_spec.inputs)


def test_serving_and_hub_roots_on_the_mounted_volume_claim_are_mounted_in_every_container(
    tmp_path):
  config = _config(**{'paths.serving_root': '/mnt/ganpipe/serving',
                      'paths.hub_root': '/mnt/ganpipe/hub',
                      'kubeflow.volume_claim': 'ganpipe-data'})
  path = kubeflow_compile.kfp_package_path(
      kubeflow_compile.compile_pipeline(config, str(tmp_path / 'ganpipe.json')))
  package = kfp_client._extract_pipeline_yaml(path)  # pylint: disable=protected-access
  executors = json_format.MessageToDict(package.platform_spec)['platforms']['kubernetes'][
      'deploymentSpec']['executors']
  containers = [label for label, executor in json_format.MessageToDict(
      package.pipeline_spec)['deploymentSpec']['executors'].items() if 'container' in executor]
  assert len(containers) == 16 and sorted(executors) == sorted(containers)
  for mounts in executors.values():
    assert mounts == {'pvcMount': [{'constant': 'ganpipe-data', 'mountPath': '/mnt/ganpipe'}]}


@pytest.mark.parametrize('overrides, message', [
    ({'paths.pipeline_root': '/mnt/ganpipe/pipeline', 'kubeflow.volume_claim': 'data'},
     'paths.pipeline_root.*the KFP launcher takes only a bucket.*cannot be on the volume claim'),
    ({'paths.pipeline_root': 's3://bucket/pipeline'},
     'paths.pipeline_root.*no S3 filesystem.*tensorflow/io#2039.*gs://BUCKET'),
    ({'paths.pipeline_root': 'minio://mlpipeline/v2/artifacts'},
     'paths.pipeline_root.*TensorFlow reads no minio:// URIs'),
    ({'paths.hub_root': 'hdfs://cluster/hub'}, 'paths.hub_root.*no Hadoop client'),
    ({'data.dataset': 'folder', 'data.data_dir': 's3://bucket/images'},
     'data.data_dir.*no S3 filesystem'),
    ({'paths.serving_root': '/mnt/ganpipe/serving'}, "paths.serving_root: '/mnt/ganpipe/serving' "
     'cannot be used on Kubeflow: it is on this machine'),
    ({'paths.serving_root': '/mnt/ganpipe2/serving', 'kubeflow.volume_claim': 'data'},
     'is outside the volume mounted at /mnt/ganpipe'),
    ({'name': 'GAN_pipe'}, 'name: Kubeflow Pipelines refuses the pipeline name'),
    ({'kubeflow.volume_claim': 'Data_Claim'}, 'is not a Kubernetes object name'),
    ({'kubeflow.volume_mount_path': 'mnt/ganpipe'}, 'must be an absolute path'),
    ({'kubeflow.image': ''}, 'kubeflow.image: no pipeline image given.*Fix: build '
     r'ganpipe/kubeflow/Dockerfile, push it .*--kubeflow.image REGISTRY/ganpipe:TAG'),
], ids=['pipeline root on the volume', 's3 root', 'minio root', 'hdfs root', 's3 data',
        'no claim', 'outside the mount', 'pipeline name', 'bad claim name',
        'relative mount path', 'no image'])
def test_what_a_backend_or_the_tasks_cannot_use_is_refused_with_the_fix(tmp_path, overrides,
                                                                         message):
  with pytest.raises(config_lib.ConfigError, match=message):
    kubeflow_compile.compile_pipeline(_config(**overrides), str(tmp_path / 'x.json'))
