"""The open-source KFP backend's rules, as kubeflow/pipelines 2.17.0 applies them (backends.py
names each rule's source), on stand-in tasks of a 2.1.0 package."""

import copy
import re

import pytest
import yaml

from ganpipe.kubeflow.local_launcher import launcher as local_launcher
from tests.kubeflow.local_launcher import stand_in
from tests.kubeflow.local_launcher.stand_in import BLESSING, MODEL, received

ROOT = 'gs://bucket/runs'
MOUNT = '/mnt/data'


def _spec():
  """Trainer -> evaluator, as TFX compiles them with PipelineSpec 2.1.0."""
  components = {
      'trainer': {'executorLabel': 'trainer_executor',
                  'inputDefinitions': {'parameters': {
                      'greeting': {'parameterType': 'STRING'},
                      'mode': {'parameterType': 'STRING'},
                      'span': {'parameterType': 'NUMBER_INTEGER', 'defaultValue': 3}}},
                  'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}},
      'evaluator': {'executorLabel': 'evaluator_executor',
                    'inputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}},
                    'outputDefinitions': {'artifacts': {'blessing': {'artifactType': BLESSING}}}},
  }
  tasks = {
      'trainer': {'componentRef': {'name': 'trainer'}, 'taskInfo': {'name': 'trainer'},
                  'inputs': {'parameters': {
                      'greeting': {'runtimeValue': {'constant': 'hi'}},
                      'mode': {'componentInputParameter': 'mode'}}}},
      'evaluator': {'componentRef': {'name': 'evaluator'}, 'taskInfo': {'name': 'evaluator'},
                    'inputs': {'artifacts': {'model': {'taskOutputArtifact': {
                        'producerTask': 'trainer', 'outputArtifactKey': 'model'}}}}},
  }
  return {'pipelineInfo': {'name': 'tiny'}, 'schemaVersion': '2.1.0',
          'defaultPipelineRoot': ROOT, 'components': components,
          'deploymentSpec': {'executors': {
              # The driver hook is there, as TFX compiles ExampleGen's; the backend ignores it.
              'trainer_executor': stand_in.container('train', pre_cache_check=True),
              'evaluator_executor': stand_in.container('evaluate')}},
          'root': {'dag': {'tasks': tasks}, 'inputDefinitions': {'parameters': {
              'mode': {'parameterType': 'STRING', 'defaultValue': 'converge'}}}}}


def _mount_everywhere(spec, claim='data', mount_path=MOUNT):
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      label: {'pvcMount': [{'constant': claim, 'mountPath': mount_path}]}
      for label in spec['deploymentSpec']['executors']}}}}}


def _launcher(tmp_path, documents=None, volumes=None, **kwargs):
  path = stand_in.write_job(str(tmp_path / 'tiny.yaml'), documents or [_spec()])
  job = local_launcher.load_job(path)
  paths = local_launcher.path_map(job, {ROOT: str(tmp_path / 'bucket')}, volumes)
  kwargs.setdefault('pipeline_root', ROOT)
  return local_launcher.LocalLauncher(job, str(tmp_path / 'logs'), paths, **kwargs)


# Upload: backend/src/apiserver/template/v2_template.go, template.go; common/utils.go.

def test_a_2_0_0_package_is_refused_at_upload(tmp_path):
  spec = _spec()
  spec['schemaVersion'] = '2.0.0'
  with pytest.raises(local_launcher.SpecError, match='KFP only supports schema version 2.1.0, '
                     'but the pipeline spec has version 2.0.0'):
    _launcher(tmp_path, [spec])


@pytest.mark.parametrize('name', ['Tiny', 'tiny.v2', 'tiny_pipeline', '-tiny'])
def test_a_pipeline_name_the_backend_refuses(tmp_path, name):
  spec = _spec()
  spec['pipelineInfo']['name'] = name
  with pytest.raises(local_launcher.SpecError, match="pipeline's name must contain only"):
    _launcher(tmp_path, [spec])


def test_a_document_that_is_not_a_strict_pipeline_spec_is_not_one(tmp_path):
  spec = _spec()
  spec['notAField'] = 1  # protojson refuses unknown fields
  with pytest.raises(local_launcher.SpecError, match='unknown template format'):
    _launcher(tmp_path, [spec])
  # Another document beside the spec is ignored, and a PipelineJob JSON is no package.
  assert _launcher(tmp_path, [_spec(), {'kind': 'ConfigMap'}]).order == ['trainer', 'evaluator']
  with pytest.raises(local_launcher.SpecError, match='unknown template format'):
    _launcher(tmp_path, [{'pipelineSpec': _spec(), 'runtimeConfig': {}}])


# Run creation: v2_template.go (validatePipelineJobInputs), compiler/visitor.go, and the root
# DAG driver's pipeline root (config/env.go, objectstore/config.go).

def test_resolver_tasks_are_refused_when_a_run_is_created(tmp_path):
  spec = _spec()
  spec['deploymentSpec']['executors']['evaluator_executor'] = {'resolver': {}}
  with pytest.raises(local_launcher.SpecError, match="executor\\(label='evaluator_executor'\\): "
                     'non-container and non-importer executor not implemented'):
    _launcher(tmp_path, [spec])


@pytest.mark.parametrize('change, arguments, message', [
    (lambda s: s['root']['inputDefinitions']['parameters']['mode'].pop('parameterType'),
     {'mode': 'x'}, 'input parameter mode has unspecified type'),
    (lambda s: None, {'mode': 1}, 'input parameter mode requires type string, but the input '
     'parameter is not of string value type'),
    (lambda s: None, {'nope': 1}, 'parameter\\(s\\) provided are not required by pipeline: nope'),
    (lambda s: s['root']['inputDefinitions']['parameters']['mode'].pop('defaultValue'), {},
     'parameter mode is not optional, yet has neither default value nor user provided value'),
], ids=['untyped parameter', 'wrong type', 'unknown parameter', 'missing parameter'])
def test_run_arguments_are_checked_against_the_typed_parameters(tmp_path, change, arguments,
                                                                 message):
  spec = _spec()
  change(spec)
  with pytest.raises(local_launcher.SpecError, match=message):
    _launcher(tmp_path, [spec], arguments=arguments)


@pytest.mark.parametrize('root, message', [
    ('/mnt/data/runs', 'unrecognized pipeline root format'),
    ('hdfs://cluster/runs', 'unsupported Cloud bucket'),
])
def test_only_a_bucket_can_be_the_pipeline_root(tmp_path, root, message):
  with pytest.raises(local_launcher.SpecError, match=f'parse bucket config failed: {message}'):
    _launcher(tmp_path, pipeline_root=root)


def test_a_run_without_a_root_gets_the_backends_minio_default_not_the_packages(tmp_path):
  result = _launcher(tmp_path, pipeline_root=None).run()
  assert result.run_root.startswith('minio://mlpipeline/v2/artifacts/tiny/')
  # Locally there is no folder for it, as TFX has no filesystem for minio:// in a pod.
  assert 'no local folder given for' in result.tasks[0].error


# The driver and the launcher: driver/resolve.go, driver/driver.go, metadata/client.go,
# component/launcher_v2.go.

def test_the_executor_input_is_the_drivers(tmp_path):
  result = _launcher(tmp_path, run_id='run-1').run()
  assert result.succeeded, [t.error for t in result.tasks]
  trainer = received(result, 'trainer', 'model')['executor_input']
  # parameterValues only; the launcher adds the component's default for what the task omits.
  assert trainer['inputs'] == {'parameterValues': {'greeting': 'hi', 'mode': 'converge',
                                                   'span': 3}}
  # The driver hook never ran: no span from it reached the model.
  output = trainer['outputs']['artifacts']['model']['artifacts'][0]
  assert output['name'] == 'model' and output['type'] == MODEL
  recorded = result.output('trainer', 'model')[0]
  assert re.fullmatch(rf'{ROOT}/tiny/run-1/trainer/[0-9a-f-]{{36}}/model', recorded.uri)
  # The output file is the task folder's, under the local path a pod sees the bucket at.
  task_folder = recorded.uri[len(ROOT):].rsplit('/', 1)[0]
  assert trainer['outputs']['outputFile'] == str(tmp_path / 'bucket') + task_folder + \
      '/output_metadata.json'


def test_upstream_artifacts_come_untyped_and_named_by_their_id(tmp_path):
  result = _launcher(tmp_path).run()
  assert result.succeeded, [t.error for t in result.tasks]
  model = received(result, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts'][
      'model']['artifacts'][0]
  assert model['name'] == '1'
  assert model['type'] == {'instanceSchema': ''}
  assert model['metadata']['greeting'] == 'hi' and model['metadata']['display_name'] == 'model'
  assert yaml.safe_load(model['metadata']['store_session_info'])['Provider'] == 'gs'


def test_a_deprecated_constant_value_fails_in_the_driver(tmp_path):
  spec = _spec()
  spec['root']['dag']['tasks']['trainer']['inputs']['parameters']['greeting'] = {
      'runtimeValue': {'constantValue': {'stringValue': 'hi'}}}
  result = _launcher(tmp_path, [spec]).run()
  assert 'ValueOrRuntimeParameter_ConstantValue not implemented' in result.tasks[0].error


def test_an_executor_output_with_an_unknown_field_fails_the_task(tmp_path):
  spec = _spec()
  spec['deploymentSpec']['executors']['trainer_executor']['container']['args'] = [
      '{{$}}', 'train', 'with-unknown-field']
  result = _launcher(tmp_path, [spec]).run()
  assert 'failed to unmarshall ExecutorOutput' in result.tasks[0].error


# The Kubernetes platform spec (driver/k8s.go, makeVolumeMountPatch).

def test_a_mounted_volume_claim_plays_its_local_folder(tmp_path):
  spec = _spec()
  spec['deploymentSpec']['executors']['trainer_executor']['container']['args'] += [
      '/mnt/data2/elsewhere', f'{MOUNT}/inside']
  launcher = _launcher(tmp_path, [spec, _mount_everywhere(spec)],
                       {'data': str(tmp_path / 'volume')})
  result = launcher.run()
  assert result.succeeded, [t.error for t in result.tasks]
  # Only a whole path segment is the mount.
  argv = received(result, 'trainer', 'model')['argv']
  assert argv[-2:] == ['/mnt/data2/elsewhere', str(tmp_path / 'volume' / 'inside')]


@pytest.mark.parametrize('change, message', [
    (lambda mounts: mounts.popitem(), 'is not mounted in'),
    (lambda mounts: next(iter(mounts.values()))['pvcMount'][0].update(constant='other'),
     "mounts volume claim 'other', and no local folder"),
    (lambda mounts: next(iter(mounts.values())).update(nodeSelector={'labels': {'a': 'b'}}),
     r"Kubernetes settings \['nodeSelector'\] are not supported"),
], ids=['a container without the mount', 'a claim without a local folder',
        'another Kubernetes setting'])
def test_a_platform_spec_the_launcher_cannot_honour_is_refused(tmp_path, change, message):
  spec = _spec()
  platform = _mount_everywhere(spec)
  change(platform['platforms']['kubernetes']['deploymentSpec']['executors'])
  with pytest.raises(local_launcher.SpecError, match=message):
    _launcher(tmp_path, [spec, copy.deepcopy(platform)], {'data': str(tmp_path / 'volume')})
