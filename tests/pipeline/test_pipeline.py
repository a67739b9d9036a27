"""The pipeline definition: components, wiring and configuration reach the right places."""

import json
import os

import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.runners.portability import prism_runner
from apache_beam.testing import util
import pytest
import tensorflow_model_analysis as tfma

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides
from ganpipe.pipeline import pipeline as pipeline_lib


@pytest.fixture(scope='module')
def built():
  config = config_overrides.with_overrides(config_lib.get_config(small=True), {
      'paths.pipeline_root': '/tmp/ganpipe-test/root',
      'paths.serving_root': '/tmp/ganpipe-test/serving',
      'classifier.learning_rate': 0.005,
      'publish.hub_asset_url': 'https://models.example.org/hub',
      'publish.rollout': 'canary',
  })
  return config, pipeline_lib.create_pipeline(config)


def _node(pipeline, node_id):
  return next(c for c in pipeline.components if c.id == node_id)


def test_component_ids_and_order(built):
  _, pipeline = built
  ids = [c.id for c in pipeline.components]
  assert ids.index('image_example_gen') < ids.index('statistics_gen') < ids.index(
      'example_validator') < ids.index('example_validation_gate') < ids.index(
          'classifier_trainer') < ids.index('classifier_evaluator') < ids.index(
              'classifier_pusher')
  assert {'schema_gen', 'transform', 'latest_blessed_classifier_resolver'} <= set(ids)


def test_locally_the_classifier_is_pushed_before_the_gan_trains(built):
  # TFX sorts each layer of the DAG by node id (tfx/utils/topsort.py), which put gan_trainer
  # before classifier_evaluator: a GAN that failed left the classifier unevaluated.
  config, pipeline = built
  ids = [c.id for c in pipeline.components]
  assert ids.index('classifier_pusher') < ids.index('gan_trainer')
  assert 'classifier_pusher' in {n.id for n in _node(pipeline, 'gan_trainer').upstream_nodes}
  # On Kubeflow both trainers start as soon as Transform is done, each on its own worker.
  kubeflow = pipeline_lib.create_pipeline(config, target=pipeline_lib.KUBEFLOW)
  assert 'classifier_pusher' not in {n.id for n in _node(kubeflow, 'gan_trainer').upstream_nodes}


@pytest.mark.parametrize('trainer', ['classifier_trainer', 'gan_trainer'])
def test_trainers_wait_for_the_validation_gate(built, trainer):
  _, pipeline = built
  assert 'example_validation_gate' in {n.id for n in _node(pipeline, trainer).upstream_nodes}


def test_both_models_side_by_side(built):
  _, pipeline = built
  ids = [c.id for c in pipeline.components]
  for node in ('gan_trainer', 'latest_blessed_generator_resolver', 'generator_evaluator',
               'generator_pusher'):
    assert node in ids
  evaluator = _node(pipeline, 'generator_evaluator')
  # The generator is judged with the classifier trained in the same run.
  assert {n.id for n in evaluator.upstream_nodes} >= {
      'gan_trainer', 'classifier_trainer', 'image_example_gen',
      'latest_blessed_generator_resolver'}
  resolver = _node(pipeline, 'latest_blessed_generator_resolver')
  assert 'gan_trainer' in {n.id for n in resolver.upstream_nodes}
  destination = json.loads(_node(pipeline, 'generator_pusher').exec_properties[
      'push_destination'])
  assert destination['filesystem']['base_directory'] == '/tmp/ganpipe-test/serving/generator'
  custom = json.loads(_node(pipeline, 'gan_trainer').exec_properties['custom_config'])
  assert custom['gan']['epochs'] == 5 and custom['image_shape'] == [8, 8, 1]


def test_the_gan_trainer_gets_the_budget_the_images_resolve_to():
  # MLMD then records the steps a run was given, not None.
  config = config_overrides.with_overrides(config_lib.get_config(), {
      'data.dataset': 'fashion-mnist', 'paths.pipeline_root': '/tmp/ganpipe-test/root'})
  pipeline = pipeline_lib.create_pipeline(config)
  custom = json.loads(_node(pipeline, 'gan_trainer').exec_properties['custom_config'])
  assert config.gan.epochs is None
  assert custom['gan']['epochs'] == config.gan_epochs() == 80


def test_trainer_gets_the_classifier_config(built):
  config, pipeline = built
  custom = json.loads(_node(pipeline, 'classifier_trainer').exec_properties['custom_config'])
  assert custom['classifier']['learning_rate'] == 0.005
  assert custom['image_shape'] == [8, 8, 1]
  assert custom['seed'] == config.seed
  assert len(custom['code_version']) == 16


def test_pusher_destination_and_cache(built):
  _, pipeline = built
  pusher = _node(pipeline, 'classifier_pusher')
  destination = json.loads(pusher.exec_properties['push_destination'])
  assert destination['filesystem']['base_directory'] == '/tmp/ganpipe-test/serving/classifier'
  assert json.loads(pusher.exec_properties['custom_config'])['rollout'] == 'canary'
  assert pipeline.enable_cache
  assert '--direct_running_mode=in_memory' in pipeline.beam_pipeline_args


def test_default_beam_args_use_a_worker_process_per_core():
  args = config_lib.get_config().beam.pipeline_args()
  assert '--direct_running_mode=multi_processing' in args
  assert '--direct_num_workers=0' in args


def test_eval_config_thresholds():
  eval_config = pipeline_lib.classifier_eval_config(
      config_lib.EvaluationConfig(min_accuracy=0.93, max_accuracy_drop=0.02))
  metric = next(m for m in eval_config.metrics_specs[0].metrics
                if m.class_name == 'SparseCategoricalAccuracy')
  assert metric.threshold.value_threshold.lower_bound.value == pytest.approx(0.93)
  assert metric.threshold.change_threshold.absolute.value == pytest.approx(-0.02)
  assert (metric.threshold.change_threshold.direction ==
          tfma.MetricDirection.HIGHER_IS_BETTER)
  assert eval_config.model_specs[0].signature_name == 'serving_examples'


def test_code_fingerprint_changes_with_the_code(tmp_path):
  package = tmp_path / 'package'
  package.mkdir()
  (package / 'model.py').write_text('x = 1\n')
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'component.py').write_text('y = 1\n')
  packages = [str(package), str(other)]
  before = pipeline_lib.code_fingerprint(packages)
  assert before == pipeline_lib.code_fingerprint(packages)
  (package / 'model.py').write_text('x = 2\n')
  after_model = pipeline_lib.code_fingerprint(packages)
  assert after_model != before
  (other / 'component.py').write_text('y = 2\n')
  assert pipeline_lib.code_fingerprint(packages) != after_model


def test_curated_schema_replaces_inference(built):
  config, _ = built
  config = config_overrides.with_overrides(config, {'data.schema_path': '/data/schema.pbtxt'})
  pipeline = pipeline_lib.create_pipeline(config)
  schema_gen = _node(pipeline, 'schema_gen')
  assert type(schema_gen).__name__ == 'ImportSchemaGen'
  assert schema_gen.exec_properties['schema_file'] == os.path.abspath('/data/schema.pbtxt')


@pytest.mark.parametrize('model', ['classifier', 'generator'])
def test_each_model_is_infra_validated_before_its_pusher(built, model):
  _, pipeline = built
  validator = _node(pipeline, f'{model}_infra_validator')
  pusher = _node(pipeline, f'{model}_pusher')
  assert validator.exec_properties['model_kind'] == model
  # The pusher pushes the infra validator's copy (with warmup requests), only when both blessings
  # say yes: it takes both blessings and no `model` of its own.
  assert set(pusher.inputs) == {'model_blessing', 'infra_blessing'}
  assert pusher.inputs['infra_blessing'].producer_component_id == f'{model}_infra_validator'
  evaluator = 'classifier_evaluator' if model == 'classifier' else 'generator_evaluator'
  assert pusher.inputs['model_blessing'].producer_component_id == evaluator


def test_hub_publisher_takes_the_blessed_generator_and_its_metrics(built):
  config, pipeline = built
  publisher = _node(pipeline, 'hub_publisher')
  assert {k: v.producer_component_id for k, v in publisher.inputs.items()} == {
      'model': 'gan_trainer', 'blessing': 'generator_evaluator',
      'evaluation': 'generator_evaluator', 'infra_blessing': 'generator_infra_validator',
      'ingestion_report': 'image_example_gen'}
  assert publisher.exec_properties['hub_root'].endswith(config.paths.hub_root.lstrip('./'))
  assert publisher.exec_properties['architecture'] in ('dense', 'dcgan')
  assert publisher.exec_properties['asset_url'] == 'https://models.example.org/hub'


def test_beam_args_name_the_fn_api_runner_so_prism_is_never_tried(monkeypatch):
  # Beam's DirectRunner tries Prism first: a binary downloaded at run time, which ignores the
  # direct_* options and, offline, leaves a /tmp/beam-temp* directory behind on every run.
  tried = []

  def run_on_prism(self, *args, **kwargs):
    tried.append(self)
    raise RuntimeError('Prism is not wanted here')
  monkeypatch.setattr(prism_runner.PrismRunner, 'run_pipeline', run_on_prism)
  args = config_lib.BeamConfig(direct_running_mode='in_memory', direct_num_workers=1)
  with beam.Pipeline(argv=args.pipeline_args()) as pipeline:
    doubled = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: 2 * x)
    util.assert_that(doubled, util.equal_to([2, 4, 6]))
  assert not tried


def test_extra_beam_args_can_name_another_runner():
  args = config_lib.BeamConfig(extra_args=('--runner=DataflowRunner',)).pipeline_args()
  assert pipeline_options.PipelineOptions(args).view_as(
      pipeline_options.StandardOptions).runner == 'DataflowRunner'


def test_drift_is_measured_against_the_blessed_classifiers_run_and_gates_training(built):
  config, pipeline = built
  drift_validator = _node(pipeline, 'drift_validator')
  gate = _node(pipeline, 'example_validation_gate')
  assert gate.inputs['drift_report'].producer_component_id == 'drift_validator'
  assert gate.exec_properties['allow_drift'] == 0
  resolver = _node(pipeline, 'drift_baseline_resolver')
  assert drift_validator.inputs['baseline_statistics'].producer_component_id == resolver.id
  assert resolver.exec_properties['resolver_class'].__name__ == 'TrainingRunStatisticsStrategy'
  assert {key: channel.producer_component_id for key, channel in resolver.raw_inputs.items()} == {
      'model': 'classifier_trainer', 'model_blessing': 'classifier_evaluator',
      'statistics': 'statistics_gen'}
  schema_gen = _node(pipeline, 'schema_gen')
  assert schema_gen.exec_properties['max_label_drift'] == config.data.max_label_drift
  allowed = pipeline_lib.create_pipeline(config_overrides.with_overrides(
      config, {'data.allow_drift': True}))
  assert _node(allowed, 'example_validation_gate').exec_properties['allow_drift'] == 1
