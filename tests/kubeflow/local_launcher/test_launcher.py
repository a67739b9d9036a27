"""The local launcher: scheduling, processes, and Vertex AI's backend, on stand-in tasks.

The open-source KFP backend's rules have their own tests (test_kfp_backend.py).
"""

import os
import re
import sys

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from ganpipe.kubeflow.local_launcher import launcher as local_launcher
from ganpipe.pipeline import config as config_lib
from tests.kubeflow.local_launcher import stand_in
from tests.kubeflow.local_launcher.stand_in import BLESSING, MODEL, received

ROOT = 'gs://bucket/tiny'


def _job():
  """Trainer -> evaluator, with TFX's two-part latest-blessed-model resolver as the baseline:
  a PipelineJob as TFX compiles it for Vertex AI (schema 2.0.0, resolvers, a driver hook)."""
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
      'trainer_executor': stand_in.container('train', pre_cache_check=True),
      'evaluator_executor': stand_in.container('evaluate'),
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
  return {'displayName': 'tiny',
          'pipelineSpec': {'pipelineInfo': {'name': 'tiny'}, 'schemaVersion': '2.0.0',
                           'components': components,
                           'deploymentSpec': {'executors': executors},
                           'root': {'dag': {'tasks': tasks}, 'inputDefinitions': {
                               'parameters': {'mode': {'type': 'STRING'}}}}},
          'runtimeConfig': {'gcsOutputDirectory': ROOT,
                            'parameters': {'mode': {'stringValue': 'converge'}}}}


def _launcher(tmp_path, job=None, **kwargs):
  path = stand_in.write_job(str(tmp_path / 'tiny.json'), job or _job())
  loaded = local_launcher.load_job(path)
  paths = local_launcher.path_map(loaded, {ROOT: str(tmp_path / 'pipeline')})
  return local_launcher.LocalLauncher(loaded, str(tmp_path / 'logs'), paths, backend='vertex',
                                      **kwargs)


def _peer_job(root, wait_seconds):
  """Two independent tasks, each of which succeeds only while the other runs too."""
  component = {'executorLabel': 'barrier',
               'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}}
  executors = {}
  for name, peer in (('left', 'right'), ('right', 'left')):
    executors[name] = {'container': {
        'image': 'ganpipe:test', 'command': ['python', '-c', stand_in.TASK],
        'args': ['{{$}}', 'barrier', os.path.join(root, name), os.path.join(root, peer),
                 str(wait_seconds)]}}
  return {'pipelineSpec': {
      'pipelineInfo': {'name': 'peers'}, 'schemaVersion': '2.0.0',
      'components': {name: dict(component, executorLabel=name) for name in executors},
      'deploymentSpec': {'executors': executors},
      'root': {'dag': {'tasks': {name: {'componentRef': {'name': name},
                                        'taskInfo': {'name': name}} for name in executors}}}},
          'runtimeConfig': {'gcsOutputDirectory': ROOT}}


def test_independent_tasks_run_side_by_side(tmp_path):
  job = _peer_job(str(tmp_path), wait_seconds=60)
  result = _launcher(tmp_path, job, max_parallel_tasks=2).run()
  assert result.succeeded, [t.error for t in result.tasks]
  assert sorted(t.task for t in result.tasks) == ['left', 'right']


def test_one_task_at_a_time_when_asked(tmp_path):
  job = _peer_job(str(tmp_path), wait_seconds=1)
  result = _launcher(tmp_path, job, max_parallel_tasks=1).run()
  assert [(t.task, t.status) for t in result.tasks] == [('left', 'failed'), ('right', 'not_run')]
  assert 'the peer task is not running alongside' in result.tasks[0].error


def test_tasks_run_in_dependency_order_including_dependencies_implied_by_inputs(tmp_path):
  assert _launcher(tmp_path).order == ['blessing-resolver', 'model-resolver', 'trainer',
                                       'evaluator']


def test_a_dependency_cycle_is_refused():
  spec = pipeline_spec_pb2.PipelineSpec()
  json_format.ParseDict({'root': {'dag': {'tasks': {
      'a': {'dependentTasks': ['b']}, 'b': {'dependentTasks': ['a']}}}}}, spec)
  with pytest.raises(local_launcher.SpecError, match=r"cycle among \['a', 'b'\]"):
    local_launcher.task_order(spec.root.dag.tasks)


def test_a_remote_path_without_a_local_folder_is_refused(tmp_path):
  job = _job()
  job['pipelineSpec']['deploymentSpec']['executors']['trainer_executor']['container'][
      'args'].append('gs://other/serving')
  result = _launcher(tmp_path, job).run()
  trainer = next(t for t in result.tasks if t.task == 'trainer')
  assert trainer.status == 'failed' and "no local folder given for ['gs://other/serving']" in \
      trainer.error


def test_executor_input_carries_parameters_artifacts_and_output_locations(tmp_path):
  result = _launcher(tmp_path, run_id='job-1').run()
  assert result.succeeded, [t.error for t in result.tasks]
  trainer = received(result, 'trainer', 'model')
  assert trainer['python'] == sys.executable
  inputs = trainer['executor_input']['inputs']
  # Both maps: 2.0.0 specs' executors read the typed `parameters`.
  assert inputs['parameterValues']['greeting'] == 'hi'
  assert inputs['parameters']['mode'] == {'stringValue': 'converge'}
  # The preCacheCheck driver's output feeds the executor's input.
  assert inputs['parameters']['span'] == {'intValue': '7'}
  # The task sees local folders where the job names the bucket.
  outputs = trainer['executor_input']['outputs']
  task_root = str(tmp_path / 'pipeline' / 'job-1' / 'trainer')
  assert outputs['outputFile'] == os.path.join(task_root, 'executor_output.json')
  assert outputs['artifacts']['model']['artifacts'][0]['uri'] == os.path.join(task_root, 'model')
  # What is recorded names the bucket again.
  assert result.output('trainer', 'model')[0].uri == f'{ROOT}/job-1/trainer/model'
  # The evaluator gets the model with the metadata the trainer reported, the driver's too, and
  # its type.
  model = received(result, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts'][
      'model']['artifacts'][0]
  assert model['metadata'] == {'greeting': 'hi', 'span': 7.0}
  assert model['name'] == 'job-1/trainer/model'
  assert model['type'] == MODEL


def test_resolvers_find_nothing_on_a_first_run_and_the_blessed_model_on_the_next(tmp_path):
  first = _launcher(tmp_path, run_id='run-1').run()
  assert first.succeeded
  assert first.output('model-resolver', 'model') == []
  baseline = received(first, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts']
  assert 'artifacts' not in baseline['baseline']

  second = _launcher(tmp_path, run_id='run-2', history=first.artifacts).run()
  assert second.succeeded
  assert [a.name for a in second.output('model-resolver', 'model')] == ['run-1/trainer/model']
  inputs = received(second, 'evaluator', 'blessing')['executor_input']['inputs']['artifacts']
  assert inputs['baseline']['artifacts'][0]['uri'] == first.local_path(
      first.output('trainer', 'model')[0].uri)


def test_a_failed_task_stops_the_run_and_shows_its_log(tmp_path):
  result = _launcher(tmp_path, arguments={'mode': 'diverge'}).run()
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
  assert len(custom) == 5
  for artifact_type in custom:
    artifact = pipeline_spec_pb2.RuntimeArtifact(uri='/x', type={
        'instance_schema': compiler_utils.get_artifact_schema(artifact_type)})
    parsed = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(
        {'a': pipeline_spec_pb2.ArtifactList(artifacts=[artifact])})
    assert type(parsed['a'][0]) is artifact_type
