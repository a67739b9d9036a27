"""The compiled KFP v2 spec: GPU requests, images, runtime parameters, and no local paths."""

import json
import os

from google.protobuf import json_format
from kfp.client import client as kfp_client
import pytest

from ganpipe.kubeflow import compile as kubeflow_compile
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


def test_data_components_do_not_request_gpus(compiled):
  spec, _ = compiled
  assert 'accelerator' not in _container(spec, 'transform').get('resources', {})


def test_every_container_runs_our_image_and_the_tfx_entry_point(compiled):
  spec, _ = compiled
  containers = [e['container'] for e in _executors(spec).values() if 'container' in e]
  assert len(containers) >= 12
  assert {c['image'] for c in containers} == {IMAGE}
  run_executor = [c for c in containers
                  if 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'
                  in ' '.join(c.get('command', []) + c.get('args', []))]
  assert len(run_executor) == len(containers)
  # ImageExampleGen, a FileBasedExampleGen, also runs TFX's driver before its executor.
  driver = _container(spec, 'image_example_gen')['lifecycle']['preCacheCheck']
  assert 'tfx.orchestration.kubeflow.v2.file_based_example_gen.driver' in ' '.join(
      driver['command'] + driver['args'])


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
  defaults = spec['runtimeConfig']['parameters']
  config = config_lib.get_config()
  assert int(defaults['gan-epochs']['intValue']) == config.gan.epochs
  assert int(defaults['classifier-epochs']['intValue']) == config.classifier.epochs
  assert (defaults['generator-max-distance-ratio']['doubleValue'] ==
          config.generator_evaluation.max_distance_ratio)


def test_the_kfp_package_is_the_same_spec_with_its_root_and_defaults(compiled, package):
  job, _ = compiled
  spec = json_format.MessageToDict(package.pipeline_spec)
  assert spec['defaultPipelineRoot'] == job['runtimeConfig']['gcsOutputDirectory']
  parameters = spec['root']['inputDefinitions']['parameters']
  for name, typed in job['runtimeConfig']['parameters'].items():
    assert parameters[name]['defaultValue'] == float(next(iter(typed.values()))), name
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


def test_roots_on_the_mounted_volume_claim_are_accepted_and_mounted_in_every_container(
    tmp_path):
  config = _config(**{'paths.pipeline_root': '/mnt/ganpipe/pipeline',
                      'paths.serving_root': '/mnt/ganpipe/serving',
                      'kubeflow.volume_claim': 'ganpipe-data'})
  path = kubeflow_compile.kfp_package_path(
      kubeflow_compile.compile_pipeline(config, str(tmp_path / 'ganpipe.json')))
  package = kfp_client._extract_pipeline_yaml(path)  # pylint: disable=protected-access
  assert package.pipeline_spec.default_pipeline_root == '/mnt/ganpipe/pipeline'
  executors = json_format.MessageToDict(package.platform_spec)['platforms']['kubernetes'][
      'deploymentSpec']['executors']
  containers = [label for label, executor in json_format.MessageToDict(
      package.pipeline_spec)['deploymentSpec']['executors'].items() if 'container' in executor]
  assert len(containers) >= 12 and sorted(executors) == sorted(containers)
  for mounts in executors.values():
    assert mounts == {'pvcMount': [{'constant': 'ganpipe-data', 'mountPath': '/mnt/ganpipe'}]}


@pytest.mark.parametrize('overrides, message', [
    ({'paths.pipeline_root': '/mnt/ganpipe/pipeline'},
     "paths.pipeline_root: '/mnt/ganpipe/pipeline' is on this machine"),
    ({'paths.pipeline_root': '/mnt/ganpipe2/pipeline', 'kubeflow.volume_claim': 'data'},
     'is outside the volume mounted at /mnt/ganpipe'),
    ({'kubeflow.volume_claim': 'Data_Claim'}, 'is not a Kubernetes object name'),
    ({'kubeflow.volume_mount_path': 'mnt/ganpipe'}, 'must be an absolute path'),
], ids=['no claim', 'outside the mount', 'bad claim name', 'relative mount path'])
def test_volume_paths_need_the_claim_and_a_path_under_its_mount(tmp_path, overrides, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    kubeflow_compile.compile_pipeline(_config(**overrides), str(tmp_path / 'x.json'))
