"""End to end: the compiled package runs as the open-source KFP backend runs it, and the package
compiled the old way fails where that backend fails it.

`local_launcher` builds every task's ExecutorInput as KFP 2.17.0's driver does (backends.py
names the source of each rule) and runs the task's container command as a local process.
"""

import glob
import json
import os

import pytest
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from ganpipe.kubeflow import compile as kubeflow_compile
from ganpipe.kubeflow.local_launcher import launcher as local_launcher
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides
from ganpipe.pipeline import pipeline as pipeline_lib

pytestmark = pytest.mark.e2e

REMOTE = 'gs://bucket/ganpipe'
VOLUME_CLAIM = 'ganpipe-data'
MOUNT = '/mnt/ganpipe'


def small_kubeflow_config() -> config_lib.PipelineConfig:
  """The small config, one GAN epoch, with the roots where `compile-kubeflow` accepts them: the
  pipeline root and hub root on gs://, the serving root on a volume claim mounted in every pod.

  One epoch of 300 steps leaves the generator near the small config's score bar (a CI run
  measured 59.5% of the real score against 60%), so this run, which proves the package and not
  the GAN, blesses by distance alone. The evaluator's thresholds have their own tests.
  """
  return config_overrides.with_overrides(config_lib.get_config(small=True), {
      'paths.pipeline_root': f'{REMOTE}/pipeline',
      'paths.serving_root': f'{MOUNT}/serving',
      'paths.hub_root': f'{REMOTE}/hub',
      'kubeflow.volume_claim': VOLUME_CLAIM,
      'kubeflow.volume_mount_path': MOUNT,
      'kubeflow.image': 'registry.example.com/ganpipe:test',
      'gan.epochs': 1,
      'generator_evaluation.min_score_ratio': 0.0,
  })


def _launcher(package: str, root, config, **kwargs) -> local_launcher.LocalLauncher:
  job = local_launcher.load_job(package)
  paths = local_launcher.path_map(job, local_launcher.local_roots(config.paths, str(root)),
                                  local_launcher.local_volumes(config.kubeflow, str(root)))
  return local_launcher.LocalLauncher(job, str(root / 'logs'), paths, backend='kfp',
                                      pipeline_root=config.paths.pipeline_root,
                                      timeout_seconds=1800, max_parallel_tasks=2, **kwargs)


@pytest.fixture(scope='module')
def launched(tmp_path_factory):
  root = tmp_path_factory.mktemp('kfp-local')
  config = small_kubeflow_config()
  package = kubeflow_compile.kfp_package_path(
      kubeflow_compile.compile_pipeline(config, str(root / 'ganpipe.json')))
  (root / 'tmp').mkdir()
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv('TMPDIR', str(root / 'tmp'))  # The tasks' temporary files, as a pod's /tmp.
    return root, _launcher(package, root, config).run()


def _failures(result):
  return '\n'.join(t.error for t in result.tasks if t.error)


def _metadata(artifact):
  return json.loads(json.dumps(dict(artifact.metadata)))


def test_every_task_succeeds_in_dependency_order_and_no_driver_hook_runs(launched):
  _, result = launched
  assert result.succeeded, _failures(result)
  ran = [t.task for t in result.tasks]
  # 16 tasks: every node but the resolvers, which KFP's backend never runs (drift_validator
  # among them, with no baseline there).
  assert len(ran) == 16 and 'drift_validator' in ran, ran
  assert not [n for n in ran if 'resolver' in n], ran
  assert ran[0] == 'image_example_gen'
  # The OSS backend never runs a container's preCacheCheck (TFX's ExampleGen driver).
  assert all(t.driver_seconds is None for t in result.tasks)


def test_the_run_ends_with_pushed_models_and_a_published_module(launched):
  root, result = launched
  assert result.succeeded, _failures(result)
  for evaluator in ('classifier_evaluator', 'generator_evaluator'):
    blessing = _metadata(result.output(evaluator, 'blessing')[0])
    assert blessing['blessed'] == 1, (evaluator, blessing.get('reason'))
  serving = root / 'volume' / 'serving'
  for model in ('classifier', 'generator'):
    assert len(glob.glob(str(serving / model / '*' / 'saved_model.pb'))) == 1, model
    pushed = _metadata(result.output(f'{model}_pusher', 'pushed_model')[0])
    assert pushed['pushed'] == 1 and pushed['pushed_destination'].startswith(
        f'{MOUNT}/serving/{model}/'), pushed
  assert (serving / 'models.config').exists()
  published = _metadata(result.output('hub_publisher', 'published_module')[0])
  assert published['published'] == 1
  assert published['published_path'].startswith(f'{REMOTE}/hub/ganpipe/generator/')


def test_tasks_leave_no_copy_of_tfx_in_the_temporary_folder(launched):
  """TFX's Beam executors package TFX for remote workers (build_ephemeral_package in
  tfx/utils/dependency_utils.py), 52 MB a time in a pod's /tmp; the pod's local runner never
  reads it (components/beam_staging.py)."""
  root, result = launched
  assert result.succeeded, _failures(result)
  left = [os.path.join(folder, name) for folder, _, names in os.walk(root / 'tmp')
          for name in names if 'tfx_ephemeral' in name or name == 'setup.py']
  assert not left, left[:5]


def test_outputs_are_where_the_backend_puts_them(launched):
  root, result = launched
  assert result.succeeded, _failures(result)
  examples = result.output('image_example_gen', 'examples')[0]
  # provisionOutputs: <root>/<pipeline name>/<run id>/<task>/<uuid>/<output key>.
  prefix = f'{REMOTE}/pipeline/ganpipe/{result.run_id}/image_example_gen/'
  assert examples.uri.startswith(prefix) and examples.uri.endswith('/examples')
  assert os.path.isdir(result.local_path(examples.uri))
  assert result.local_path(examples.uri).startswith(str(root / 'pipeline'))
  assert json.loads(_metadata(examples)['split_names']) == ['train', 'eval']


def test_every_untyped_input_was_given_its_declared_type(launched):
  _, result = launched
  assert result.succeeded, _failures(result)
  consumers = [t for t in result.tasks if t.task != 'image_example_gen']
  for task in consumers:
    with open(task.log_path) as f:
      assert 'came untyped; given their declared types' in f.read(), task.task


# The same backend, given the package as it was compiled before: 2.0.0, TFX's own entry point.

def _old_package(config, root, spec_2_1: bool) -> str:
  """The package as `compile-kubeflow` wrote it before this backend was followed."""
  pipeline = pipeline_lib.create_pipeline(
      config, kubeflow_compile.beam_args_for_kubeflow(config), target=pipeline_lib.KUBEFLOW)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          display_name=config.name, default_image=config.kubeflow.image,
          use_pipeline_spec_2_1=spec_2_1),
      output_dir=str(root), output_filename='old.json')
  runner.run(pipeline, parameter_values=kubeflow_compile.runtime_defaults(config),
             write_out=True)
  return kubeflow_compile.write_kfp_package(str(root / 'old.json'), config.kubeflow)


def test_the_old_package_fails_where_the_backend_fails_it(tmp_path):
  config = small_kubeflow_config()
  package = _old_package(config, tmp_path, spec_2_1=False)
  # Refused at upload.
  with pytest.raises(local_launcher.SpecError, match='KFP only supports schema version 2.1.0'):
    _launcher(package, tmp_path, config)
  # Forced through, its constants cannot be read by the driver: the first task fails.
  with open(package) as f:
    text = f.read().replace("schemaVersion: 2.0.0", "schemaVersion: '2.1.0'")
  with open(package, 'w') as f:
    f.write(text)
  result = _launcher(package, tmp_path, config).run()
  first = result.tasks[0]
  assert first.status == 'failed' and 'ValueOrRuntimeParameter_ConstantValue not implemented' in \
      first.error
  assert all(t.status == 'not_run' for t in result.tasks[1:])


def test_a_2_1_0_package_on_tfxs_own_entry_point_fails_on_the_first_upstream_artifact(
    tmp_path, monkeypatch):
  # TFX's own entry point packages TFX into the tasks' temporary folder (beam_staging.py).
  monkeypatch.setenv('TMPDIR', str(tmp_path))
  config = small_kubeflow_config()
  package = _old_package(config, tmp_path, spec_2_1=True)
  result = _launcher(package, tmp_path, config).run()
  statuses = {t.task: t.status for t in result.tasks}
  assert statuses['image_example_gen'] == 'succeeded', _failures(result)
  failed = [t for t in result.tasks if t.status == 'failed']
  assert failed and failed[0].task in ('statistics_gen', 'transform'), statuses
  # The driver's empty instanceSchema: yaml.safe_load('') is None (kubeflow_v2_entrypoint_utils).
  assert "AttributeError: 'NoneType' object has no attribute 'get'" in failed[0].error
  # The control of test_tasks_leave_no_copy_of_tfx_in_the_temporary_folder: tasks use TMPDIR.
  assert glob.glob(str(tmp_path / 'tmp*' / 'build' / 'tfx' / 'dist' / 'tfx_ephemeral-*'))
