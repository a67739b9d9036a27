"""The compiled Kubeflow spec runs: every task, as the KFP launcher would run it, locally."""

import json
import os
import re
import sys

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import yaml

from ganpipe.kubeflow.local_launcher import launcher as local_launcher
from ganpipe.pipeline import config as config_lib

# A stand-in for TFX's container entry points: `python -c TASK {{$}} ROLE`. It records what it
# received in its output folder and reports its outputs in the ExecutorOutput, like TFX's.
TASK = r'''
import json, os, sys, time
executor_input, role = json.loads(sys.argv[1]), sys.argv[2]
inputs, outputs = executor_input.get('inputs', {}), executor_input['outputs']

def report(key, **metadata):
  artifact = outputs['artifacts'][key]['artifacts'][0]
  os.makedirs(artifact['uri'], exist_ok=True)
  with open(os.path.join(artifact['uri'], 'received.json'), 'w') as f:
    json.dump({'executor_input': executor_input, 'python': sys.executable}, f)
  with open(outputs['outputFile'], 'w') as f:
    json.dump({'artifacts': {key: {'artifacts': [{'uri': artifact['uri'],
                                                  'metadata': metadata}]}},
               'parameterValues': {'span': 7} if role == 'driver' else {}}, f)

if role == 'driver':
  report('model', span=7)
elif role == 'train':
  if inputs['parameterValues']['mode'] == 'diverge':
    sys.exit('training diverged')
  values = inputs['parameterValues']
  report('model', greeting=values['greeting'], span=values['span'])
elif role == 'barrier':
  # Marks that it runs, then waits for its peer task to run too.
  mine, peer, wait_seconds = sys.argv[3], sys.argv[4], float(sys.argv[5])
  open(mine, 'w').close()
  deadline = time.monotonic() + wait_seconds
  while not os.path.exists(peer):
    if time.monotonic() > deadline:
      sys.exit('the peer task is not running alongside')
    time.sleep(0.02)
  report('model')
else:
  model = inputs['artifacts']['model']['artifacts'][0]
  report('blessing', blessed=1, current_model_id=model['name'])
'''
MODEL = {'instanceSchema': 'title: tfx.Model\ntype: object\n'}
BLESSING = {'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}


def _container(role, pre_cache_check=False):
  container = {'image': 'ganpipe:test', 'command': ['python', '-c', TASK],
               'args': ['{{$}}', role]}
  if pre_cache_check:
    container['lifecycle'] = {'preCacheCheck': {'command': ['python', '-c', TASK],
                                                'args': ['{{$}}', 'driver']}}
  return {'container': container}


def _job(root):
  """Trainer -> evaluator, with TFX's two-part latest-blessed-model resolver as the baseline."""
  blessed = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
  of_blessing = ('schema_title="tfx.Model" AND state=LIVE AND '
                 'name="{{$.inputs.artifacts[\'input\'].metadata[\'current_model_id\']}}"')
  components = {
      'trainer': {'executorLabel': 'trainer_executor',
                  'inputDefinitions': {'parameters': {'greeting': {'type': 'STRING'},
                                                      'mode': {'type': 'STRING'}}},
                  'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}},
      'evaluator': {'executorLabel': 'evaluator_executor',
                    'inputDefinitions': {'artifacts': {'model': {'artifactType': MODEL},
                                                       'baseline': {'artifactType': MODEL}}},
                    'outputDefinitions': {'artifacts': {'blessing': {'artifactType': BLESSING}}}},
      'blessing-resolver': {'executorLabel': 'blessing_resolver',
                            'outputDefinitions': {'artifacts': {
                                'model_blessing': {'artifactType': BLESSING}}}},
      'model-resolver': {'executorLabel': 'model_resolver',
                         'inputDefinitions': {'artifacts': {'input': {'artifactType': BLESSING}}},
                         'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}},
  }
  executors = {
      'trainer_executor': _container('train', pre_cache_check=True),
      'evaluator_executor': _container('evaluate'),
      'blessing_resolver': {'resolver': {'outputArtifactQueries': {
          'model_blessing': {'filter': blessed}}}},
      'model_resolver': {'resolver': {'outputArtifactQueries': {'model': {'filter': of_blessing}}}},
  }
  tasks = {
      'trainer': {'componentRef': {'name': 'trainer'}, 'taskInfo': {'name': 'trainer'},
                  'inputs': {'parameters': {
                      'greeting': {'runtimeValue': {'constantValue': {'stringValue': 'hi'}}},
                      'mode': {'componentInputParameter': 'mode'}}}},
      'evaluator': {'componentRef': {'name': 'evaluator'}, 'taskInfo': {'name': 'evaluator'},
                    'dependentTasks': ['model-resolver', 'trainer'],
                    'inputs': {'artifacts': {
                        'model': {'taskOutputArtifact': {'producerTask': 'trainer',
                                                         'outputArtifactKey': 'model'}},
                        'baseline': {'taskOutputArtifact': {'producerTask': 'model-resolver',
                                                            'outputArtifactKey': 'model'}}}}},
      'blessing-resolver': {'componentRef': {'name': 'blessing-resolver'},
                            'taskInfo': {'name': 'blessing-resolver'}},
      # Like TFX's compiled resolvers: the dependency is only implied by the input.
      'model-resolver': {'componentRef': {'name': 'model-resolver'},
                         'taskInfo': {'name': 'model-resolver'},
                         'inputs': {'artifacts': {'input': {'taskOutputArtifact': {
                             'producerTask': 'blessing-resolver',
                             'outputArtifactKey': 'model_blessing'}}}}},
  }
  job = {'displayName': 'tiny',
         'pipelineSpec': {'pipelineInfo': {'name': 'tiny'}, 'schemaVersion': '2.0.0',
                          'components': components,
                          'deploymentSpec': {'executors': executors},
                          'root': {'dag': {'tasks': tasks}, 'inputDefinitions': {
                              'parameters': {'mode': {'type': 'STRING'}}}}},
         'runtimeConfig': {'gcsOutputDirectory': 'gs://bucket/tiny',
                           'parameters': {'mode': {'stringValue': 'converge'}}}}
  path = os.path.join(root, 'tiny.json')
  with open(path, 'w') as f:
    json.dump(job, f)
  return local_launcher.load_job(path, {'gs://bucket/tiny': os.path.join(root, 'pipeline')})


def _peer_job(root, wait_seconds):
  """Two independent tasks, each of which succeeds only while the other runs too."""
  component = {'executorLabel': 'barrier',
               'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}}
  executors = {}
  for name, peer in (('left', 'right'), ('right', 'left')):
    executors[name] = {'container': {
        'image': 'ganpipe:test', 'command': ['python', '-c', TASK],
        'args': ['{{$}}', 'barrier', os.path.join(root, name), os.path.join(root, peer),
                 str(wait_seconds)]}}
  job = {'pipelineSpec': {
      'pipelineInfo': {'name': 'peers'}, 'schemaVersion': '2.0.0',
      'components': {name: dict(component, executorLabel=name) for name in executors},
      'deploymentSpec': {'executors': executors},
      'root': {'dag': {'tasks': {name: {'componentRef': {'name': name},
                                        'taskInfo': {'name': name}} for name in executors}}}},
         'runtimeConfig': {'gcsOutputDirectory': os.path.join(root, 'pipeline')}}
  return job


def test_independent_tasks_run_side_by_side(tmp_path):
  job = _peer_job(str(tmp_path), wait_seconds=60)
  result = local_launcher.LocalLauncher(job, str(tmp_path / 'logs'), max_parallel_tasks=2).run()
  assert result.succeeded, [t.error for t in result.tasks]
  assert sorted(t.task for t in result.tasks) == ['left', 'right']


def test_one_task_at_a_time_when_asked(tmp_path):
  job = _peer_job(str(tmp_path), wait_seconds=1)
  result = local_launcher.LocalLauncher(job, str(tmp_path / 'logs'), max_parallel_tasks=1).run()
  assert [(t.task, t.status) for t in result.tasks] == [('left', 'failed'), ('right', 'not_run')]
  assert 'the peer task is not running alongside' in result.tasks[0].error


def _received(result, task, key):
  with open(os.path.join(result.output(task, key)[0].uri, 'received.json')) as f:
    return json.load(f)


def test_tasks_run_in_dependency_order_including_dependencies_implied_by_inputs(tmp_path):
  launcher = local_launcher.LocalLauncher(_job(str(tmp_path)), str(tmp_path / 'logs'))
  assert launcher.order == ['blessing-resolver', 'model-resolver', 'trainer', 'evaluator']


def test_a_dependency_cycle_is_refused():
  spec = pipeline_spec_pb2.PipelineSpec()
  json_format.ParseDict({'root': {'dag': {'tasks': {
      'a': {'dependentTasks': ['b']}, 'b': {'dependentTasks': ['a']}}}}}, spec)
  with pytest.raises(local_launcher.SpecError, match=r"cycle among \['a', 'b'\]"):
    local_launcher.task_order(spec.root.dag.tasks)


def test_a_remote_path_without_a_local_root_is_refused(tmp_path):
  path = tmp_path / 'job.json'
  path.write_text(json.dumps({'runtimeConfig': {'gcsOutputDirectory': 'gs://bucket/root'},
                              'x': 'gs://other/serving'}))
  with pytest.raises(local_launcher.SpecError, match='gs://other/serving'):
    local_launcher.load_job(str(path), {'gs://bucket/root': str(tmp_path)})


def test_executor_input_carries_parameters_artifacts_and_output_locations(tmp_path):
  result = local_launcher.LocalLauncher(_job(str(tmp_path)), str(tmp_path / 'logs'),
                                        job_id='job-1').run()
  assert result.succeeded, [t.error for t in result.tasks]
  trainer = _received(result, 'trainer', 'model')
  assert trainer['python'] == sys.executable
  inputs = trainer['executor_input']['inputs']
  # Both maps: 2.0.0 specs' executors read the typed `parameters`.
  assert inputs['parameterValues']['greeting'] == 'hi'
  assert inputs['parameters']['mode'] == {'stringValue': 'converge'}
  # The preCacheCheck driver's output feeds the executor's input.
  assert inputs['parameters']['span'] == {'intValue': '7'}
  outputs = trainer['executor_input']['outputs']
  task_root = str(tmp_path / 'pipeline' / 'job-1' / 'trainer')
  assert outputs['outputFile'] == os.path.join(task_root, 'executor_output.json')
  assert outputs['artifacts']['model']['artifacts'][0]['uri'] == os.path.join(task_root, 'model')
  # The evaluator gets the model with the metadata the trainer reported, the driver's too.
  model = _received(result, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts'][
      'model']['artifacts'][0]
  assert model['metadata'] == {'greeting': 'hi', 'span': 7.0}
  assert model['name'] == 'job-1/trainer/model'
  assert model['type'] == MODEL


def test_resolvers_find_nothing_on_a_first_run_and_the_blessed_model_on_the_next(tmp_path):
  first = local_launcher.LocalLauncher(_job(str(tmp_path)), str(tmp_path / 'logs'),
                                       job_id='run-1').run()
  assert first.succeeded
  assert first.output('model-resolver', 'model') == []
  baseline = _received(first, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts']
  assert 'artifacts' not in baseline['baseline']

  second = local_launcher.LocalLauncher(_job(str(tmp_path)), str(tmp_path / 'logs'),
                                        job_id='run-2', history=first.artifacts).run()
  assert second.succeeded
  assert [a.name for a in second.output('model-resolver', 'model')] == ['run-1/trainer/model']
  inputs = _received(second, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts']
  assert inputs['baseline']['artifacts'][0]['uri'] == first.output('trainer', 'model')[0].uri


def test_a_kfp_package_runs_with_its_default_root_and_parameter_defaults(tmp_path):
  spec = _job(str(tmp_path))['pipelineSpec']
  spec['defaultPipelineRoot'] = 'gs://bucket/tiny'
  spec['root']['inputDefinitions']['parameters']['mode']['defaultValue'] = 'converge'
  package = tmp_path / 'tiny.yaml'
  package.write_text(yaml.safe_dump(spec))
  job = local_launcher.load_job(str(package), {'gs://bucket/tiny': str(tmp_path / 'package')})
  result = local_launcher.LocalLauncher(job, str(tmp_path / 'logs'), job_id='run-1').run()
  assert result.succeeded, [t.error for t in result.tasks]
  trainer = _received(result, 'trainer', 'model')['executor_input']
  assert trainer['inputs']['parameters']['mode'] == {'stringValue': 'converge'}
  assert trainer['outputs']['outputFile'].startswith(str(tmp_path / 'package' / 'run-1'))


def _package_with_platform(tmp_path, platform, spec=None):
  spec = spec or _job(str(tmp_path))['pipelineSpec']
  spec['defaultPipelineRoot'] = '/mnt/data/root'
  spec['root']['inputDefinitions']['parameters']['mode']['defaultValue'] = 'converge'
  package = tmp_path / 'tiny.yaml'
  package.write_text(yaml.safe_dump_all([spec, {'platforms': {'kubernetes': {
      'deploymentSpec': {'executors': platform}}}}]))
  return str(package), spec


def _mount_everywhere(spec, claim='data', mount_path='/mnt/data'):
  return {label: {'pvcMount': [{'constant': claim, 'mountPath': mount_path}]}
          for label, executor in spec['deploymentSpec']['executors'].items()
          if 'container' in executor}


def test_a_mounted_volume_claim_plays_its_local_folder(tmp_path):
  spec = _job(str(tmp_path))['pipelineSpec']
  package, _ = _package_with_platform(tmp_path, _mount_everywhere(spec))
  job = local_launcher.load_job(package, {}, {'data': str(tmp_path / 'volume')})
  assert job['runtimeConfig']['gcsOutputDirectory'] == str(tmp_path / 'volume' / 'root')
  result = local_launcher.LocalLauncher(job, str(tmp_path / 'logs'), job_id='run-1').run()
  assert result.succeeded, [t.error for t in result.tasks]
  trainer = _received(result, 'trainer', 'model')['executor_input']
  assert trainer['outputs']['outputFile'].startswith(str(tmp_path / 'volume' / 'root' / 'run-1'))


def test_a_mount_path_is_replaced_only_where_a_whole_path_segment_matches(tmp_path):
  spec = _job(str(tmp_path))['pipelineSpec']
  spec['deploymentSpec']['executors']['trainer_executor']['container']['args'] += [
      '/mnt/data2/elsewhere', '/mnt/data/inside']
  package, _ = _package_with_platform(tmp_path, _mount_everywhere(spec), spec)
  job = local_launcher.load_job(package, {}, {'data': str(tmp_path / 'volume')})
  args = job['pipelineSpec']['deploymentSpec']['executors']['trainer_executor']['container'][
      'args']
  assert args[-2:] == ['/mnt/data2/elsewhere', str(tmp_path / 'volume' / 'inside')]


@pytest.mark.parametrize('change, message', [
    (lambda mounts: mounts.popitem(), 'is not mounted in'),
    (lambda mounts: next(iter(mounts.values()))['pvcMount'][0].update(constant='other'),
     "mounts volume claim 'other', and no local folder"),
    (lambda mounts: next(iter(mounts.values())).update(nodeSelector={'labels': {'a': 'b'}}),
     r"Kubernetes settings \['nodeSelector'\] are not supported"),
], ids=['a container without the mount', 'a claim without a local folder',
        'another Kubernetes setting'])
def test_a_platform_spec_the_launcher_cannot_honour_is_refused(tmp_path, change, message):
  spec = _job(str(tmp_path))['pipelineSpec']
  mounts = _mount_everywhere(spec)
  change(mounts)
  package, _ = _package_with_platform(tmp_path, mounts)
  with pytest.raises(local_launcher.SpecError, match=message):
    local_launcher.load_job(package, {}, {'data': str(tmp_path / 'volume')})


def test_a_failed_task_stops_the_run_and_shows_its_log(tmp_path):
  launcher = local_launcher.LocalLauncher(_job(str(tmp_path)), str(tmp_path / 'logs'),
                                          parameter_values={'mode': 'diverge'})
  result = launcher.run()
  statuses = {t.task: t.status for t in result.tasks}
  assert statuses == {'blessing-resolver': 'succeeded', 'model-resolver': 'succeeded',
                      'trainer': 'failed', 'evaluator': 'not_run'}
  failed = next(t for t in result.tasks if t.status == 'failed')
  assert 'trainer (executor) failed: exit code 1' in failed.error
  assert 'training diverged' in failed.error


def test_tasks_get_the_environment_the_image_sets():
  with open(os.path.join(local_launcher.REPO_ROOT, 'ganpipe', 'kubeflow', 'Dockerfile')) as f:
    dockerfile = f.read()
  for name, value in local_launcher.IMAGE_ENV.items():
    assert re.search(rf'\b{name}={value}\b', dockerfile), name


def test_custom_artifact_types_load_from_their_schema_titles_in_the_container():
  # pylint: disable=import-outside-toplevel
  from tfx.orchestration.kubeflow.v2 import compiler_utils
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
  from ganpipe.pipeline import pipeline as pipeline_lib
  # pylint: enable=import-outside-toplevel
  config = config_lib.get_config(small=True)
  pipeline = pipeline_lib.create_pipeline(config, target=pipeline_lib.KUBEFLOW)
  types = {channel.type for node in pipeline.components
           for channel in node.outputs.values()}
  custom = [t for t in types if t.TYPE_NAME.startswith('ganpipe.')]
  assert len(custom) == 4
  for artifact_type in custom:
    artifact = pipeline_spec_pb2.RuntimeArtifact(uri='/x', type={
        'instance_schema': compiler_utils.get_artifact_schema(artifact_type)})
    parsed = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(
        {'a': pipeline_spec_pb2.ArtifactList(artifacts=[artifact])})
    assert type(parsed['a'][0]) is artifact_type
