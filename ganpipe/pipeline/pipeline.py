"""The pipeline: `create_pipeline(config)` is its only definition; every runner uses it."""

import dataclasses
import hashlib
import os
from typing import List, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import types as tfx_types
from tfx import v1 as tfx
from tfx.dsl.input_resolution import canned_resolver_functions
from tfx.types import standard_artifacts

from ganpipe import components
from ganpipe import models
from ganpipe.components import baseline_resolver
from ganpipe.components.drift_validator import baseline as drift_baseline
from ganpipe.components.drift_validator.component import DriftValidator
from ganpipe.components.example_validation_gate.component import ExampleValidationGate
from ganpipe.components.generator_evaluator.component import GeneratorEvaluator
from ganpipe.components.hub_publisher.component import HubPublisher
from ganpipe.components.image_example_gen.component import ImageExampleGen
from ganpipe.components.image_schema_gen.component import ImageSchemaGen
from ganpipe.components.infra_validator.component import InfraValidator
from ganpipe.components.serving_pusher.component import ServingPusher
from ganpipe.components.trainer.component import Trainer
from ganpipe.models import features
from ganpipe.models import preprocessing
from ganpipe.models import signatures
from ganpipe.models.gan import model as gan_model
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import nodes
from ganpipe.pipeline import overrides as config_overrides

PREPROCESSING_FN = 'ganpipe.models.preprocessing.preprocessing_fn'
CLASSIFIER_RUN_FN = 'ganpipe.models.classifier.training.run_fn'
GAN_RUN_FN = 'ganpipe.models.gan.training.run_fn'
# The node ids and model names live where commands that read a run can import them without TFX.
CLASSIFIER = nodes.CLASSIFIER
GENERATOR = nodes.GENERATOR
INGESTION_NODE = nodes.INGESTION_NODE
EVALUATED_MODELS = nodes.EVALUATED_MODELS
LOCAL = 'local'
KUBEFLOW = 'kubeflow'

# What runs inside the components' executors: the model code and the components themselves.
_CODE_PACKAGES = tuple(os.path.dirname(os.path.abspath(package.__file__))
                       for package in (models, components))


def code_fingerprint(package_dirs: Sequence[str] = _CODE_PACKAGES) -> str:
  """A hash of the model and component code.

  `run_fn` and `preprocessing_fn` are named by import path, so TFX's cache cannot see their code
  change; passing this fingerprint in `custom_config` makes an edit re-run what it affects.
  """
  digest = hashlib.sha256()
  for package_dir in package_dirs:
    for directory, _, files in sorted(os.walk(package_dir)):
      for name in sorted(f for f in files if f.endswith('.py')):
        path = os.path.join(directory, name)
        digest.update(os.path.relpath(path, os.path.dirname(package_dir)).encode())
        with open(path, 'rb') as f:
          digest.update(f.read())
  return digest.hexdigest()[:16]


def _local_or_uri(path: str) -> str:
  """Absolute local paths (Beam workers may start elsewhere); URIs as given."""
  return path if '://' in path else os.path.abspath(path)


def classifier_eval_config(evaluation: config_lib.EvaluationConfig) -> tfma.EvalConfig:
  """TFMA: accuracy must reach a floor and may drop at most so much below the baseline."""
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=signatures.CLASSIFY_EXAMPLES,
                                  label_key=features.LABEL_KEY,
                                  prediction_key='probabilities')],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(
              class_name='SparseCategoricalAccuracy',
              threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(
                      lower_bound={'value': evaluation.min_accuracy}),
                  # Ignored on the first run, when there is no blessed baseline yet.
                  change_threshold=tfma.GenericChangeThreshold(
                      direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                      absolute={'value': -evaluation.max_accuracy_drop}))),
      ])])


def _runtime(name: str, default, ptype):
  return tfx.dsl.experimental.RuntimeParameter(name=name, ptype=ptype, default=default)


def _baseline_resolver(kubeflow: bool, trainer, trainer_id: str, evaluator_id: str):
  """The latest blessed model other than the candidate; none on Kubeflow.

  Kubeflow Pipelines' v2 backend does not run resolver tasks ("resolver executors not
  implemented"), so there the evaluators judge the candidate on its own thresholds.
  """
  if kubeflow:
    return None
  return baseline_resolver.latest_blessed_baseline(
      candidate=trainer.outputs['model'], trainer_id=trainer_id, evaluator_id=evaluator_id)


def training_window(train_spans: int, kubeflow: bool, example_gen) -> tfx_types.BaseChannel:
  """The Examples that Transform, and through it the Trainers, read: the newest `train_spans`.

  One span is this run's ingestion output. More are TFX's `rolling_range` resolver function
  (tfx/dsl/input_resolution/canned_resolver_functions.py) over every Examples artifact the
  ingestion node ever wrote: a plain Channel, like the baseline resolvers', is compiled without
  the pipeline-run context (tfx/dsl/compiler/node_inputs_compiler.py), so earlier runs' spans
  are seen. It picks the newest version of each of the newest spans; `min_spans=1` lets the
  first runs, with fewer spans, train on what there is.

  Raises:
    ValueError: more than one span on Kubeflow, whose v2 backend does not run resolvers.
  """
  if train_spans == 1:
    return example_gen.outputs['examples']
  if kubeflow:
    raise ValueError(f'--data.train_spans {train_spans} needs a resolver, which Kubeflow '
                     "Pipelines' v2 backend does not run; pass --data.train_spans 1 there")
  every_span = tfx_types.Channel(type=standard_artifacts.Examples,
                                 producer_component_id=INGESTION_NODE, output_key='examples')
  return canned_resolver_functions.rolling_range(every_span, num_spans=train_spans, min_spans=1)


def _resources(cpu: float, memory_gb: float, accelerator_type: str = '',
               accelerator_count: int = 0):
  """A Kubernetes task's requests: vCPUs, memory and, optionally, accelerators."""
  # pylint: disable=import-outside-toplevel
  from kfp.pipeline_spec import pipeline_spec_pb2
  resources = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
      cpu_limit=cpu, memory_limit=memory_gb)
  if accelerator_count:
    resources.accelerator.type = accelerator_type
    resources.accelerator.count = accelerator_count
  return resources


def _validate_and_push(config: config_lib.PipelineConfig, model_name: str,
                       model: tfx.dsl.Channel, blessing: tfx.dsl.Channel,
                       examples: tfx.dsl.Channel):
  """Infra validation in a sandboxed model server, then an atomic push of the warmed-up model.

  The pusher takes the infra validator's copy of the model, which carries the warmup requests,
  and pushes only when the model blessing and the infra blessing both say blessed.
  """
  publish = config.publish
  infra_validator = InfraValidator(
      model=model, examples=examples, model_name=model_name, model_kind=model_name,
      timeout_seconds=publish.infra_timeout_seconds, num_requests=publish.infra_num_requests,
      serving_binary=publish.serving_binary,
  ).with_id(f'{model_name}_infra_validator')
  pusher = ServingPusher(
      model_name=model_name,
      serving_root=_local_or_uri(config.paths.serving_root),
      model_blessing=blessing,
      infra_blessing=infra_validator.outputs['blessing'],
      keep_versions=publish.keep_versions,
      models_config_base_path=publish.models_config_base_path or None,
      rollout_mode=publish.rollout,
  ).with_id(f'{model_name}_pusher')
  return infra_validator, pusher


def create_pipeline(config: config_lib.PipelineConfig,
                    beam_pipeline_args: Optional[List[str]] = None,
                    target: str = LOCAL) -> tfx.dsl.Pipeline:
  """Builds the TFX pipeline described by `config`.

  Args:
    config: the validated pipeline configuration.
    beam_pipeline_args: Beam args for the data components; defaults to `config.beam`'s.
    target: `local` (Beam or local DAG runner) or `kubeflow` (compiled by KubeflowV2DagRunner).
      For Kubeflow the Trainers request accelerators, the other tasks `kubeflow.data_cpu` and
      `data_memory_gb`, epochs and the generator's thresholds become runtime parameters, and
      there are no baseline resolvers: the KFP v2 backend does not run resolver tasks.

  Returns:
    A tfx.dsl.Pipeline for that runner.
  """
  if target not in (LOCAL, KUBEFLOW):
    raise ValueError(f'target must be {LOCAL!r} or {KUBEFLOW!r}, got {target!r}')
  kubeflow = target == KUBEFLOW
  data = config.data
  image_shape = data.image_shape
  code_version = code_fingerprint()

  example_gen = ImageExampleGen(
      source=data.dataset,
      image_shape=image_shape,
      input_base=_local_or_uri(data.data_dir) if data.data_dir else None,
      on_wrong_size=data.on_wrong_size,
      formats=data.formats,
      max_image_pixels=data.max_image_pixels,
      max_bad_fraction=data.max_bad_fraction,
      train_buckets=data.train_buckets,
      eval_buckets=data.eval_buckets,
      span_pattern=data.span_pattern).with_id(INGESTION_NODE)

  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples']).with_id('statistics_gen')
  if data.schema_path:
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=_local_or_uri(data.schema_path)).with_id('schema_gen')
  else:
    schema_gen = ImageSchemaGen(
        statistics=statistics_gen.outputs['statistics'], max_label_drift=data.max_label_drift,
        max_feature_drift=data.max_feature_drift).with_id('schema_gen')
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema']).with_id('example_validator')
  # The baseline of drift: the statistics of the run that trained the latest blessed classifier.
  # A resolver, so none on Kubeflow: there every span is compared with none.
  drift_baseline_resolver = None if kubeflow else drift_baseline.training_run_statistics(
      'classifier_trainer', 'classifier_evaluator', 'statistics_gen').with_id(
          'drift_baseline_resolver')
  drift_validator = DriftValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'],
      baseline_statistics=(drift_baseline_resolver.outputs['statistics']
                           if drift_baseline_resolver else None)).with_id('drift_validator')
  validation_gate = ExampleValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      drift_report=drift_validator.outputs['drift_report'],
      allow_drift=data.allow_drift).with_id('example_validation_gate')

  transform = tfx.components.Transform(
      examples=training_window(data.train_spans, kubeflow, example_gen),
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=PREPROCESSING_FN,
      custom_config={preprocessing.IMAGE_SHAPE: list(image_shape),
                     'code_version': code_version}).with_id('transform')
  transform.add_upstream_node(example_gen)  # the window must hold this run's span

  classifier = config.classifier
  classifier_trainer = Trainer(
      run_fn=CLASSIFIER_RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      class_map=example_gen.outputs['class_map'],
      train_steps=classifier.train_steps,
      eval_steps=classifier.eval_steps,
      model_section='classifier',
      epochs=_runtime('classifier-epochs', classifier.epochs, int) if kubeflow else None,
      custom_config={
          'classifier': config_overrides.to_dict(classifier),
          preprocessing.IMAGE_SHAPE: list(image_shape),
          'seed': config.seed,
          'code_version': code_version,
      }).with_id('classifier_trainer')
  classifier_trainer.add_upstream_node(validation_gate)

  classifier_baseline = _baseline_resolver(
      kubeflow, classifier_trainer, 'classifier_trainer', 'classifier_evaluator')
  if classifier_baseline:
    classifier_baseline.with_id('latest_blessed_classifier_resolver')

  classifier_evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs['examples'],
      model=classifier_trainer.outputs['model'],
      baseline_model=classifier_baseline.outputs['model'] if classifier_baseline else None,
      eval_config=classifier_eval_config(config.evaluation),
  ).with_id('classifier_evaluator')

  classifier_infra_validator, classifier_pusher = _validate_and_push(
      config, CLASSIFIER, classifier_trainer.outputs['model'],
      classifier_evaluator.outputs['blessing'], example_gen.outputs['examples'])

  gan_trainer = Trainer(
      run_fn=GAN_RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      model_section='gan',
      epochs=_runtime('gan-epochs', config.gan_epochs(), int) if kubeflow else None,
      custom_config={
          # The budget resolved here, so that MLMD records the steps the run was given.
          'gan': config_overrides.to_dict(dataclasses.replace(config.gan,
                                                              epochs=config.gan_epochs())),
          preprocessing.IMAGE_SHAPE: list(image_shape),
          'seed': config.seed,
          'code_version': code_version,
      }).with_id('gan_trainer')
  gan_trainer.add_upstream_node(validation_gate)

  generator_baseline = _baseline_resolver(
      kubeflow, gan_trainer, 'gan_trainer', 'generator_evaluator')
  if generator_baseline:
    generator_baseline.with_id('latest_blessed_generator_resolver')

  generator_evaluation = config.generator_evaluation
  generator_evaluator = GeneratorEvaluator(
      model=gan_trainer.outputs['model'],
      classifier=classifier_trainer.outputs['model'],
      examples=example_gen.outputs['examples'],
      baseline_model=generator_baseline.outputs['model'] if generator_baseline else None,
      num_samples=generator_evaluation.num_samples,
      max_distance_ratio=(_runtime('generator-max-distance-ratio',
                                   generator_evaluation.max_distance_ratio, float)
                          if kubeflow else generator_evaluation.max_distance_ratio),
      min_score_ratio=(_runtime('generator-min-score-ratio', generator_evaluation.min_score_ratio,
                                float) if kubeflow else generator_evaluation.min_score_ratio),
      max_distance_increase=generator_evaluation.max_distance_increase,
      seed=config.seed,
  ).with_id('generator_evaluator')

  generator_infra_validator, generator_pusher = _validate_and_push(
      config, GENERATOR, gan_trainer.outputs['model'], generator_evaluator.outputs['blessing'],
      example_gen.outputs['examples'])

  publish = config.publish
  hub_publisher = HubPublisher(
      model=gan_trainer.outputs['model'],
      blessing=generator_evaluator.outputs['blessing'],
      evaluation=generator_evaluator.outputs['evaluation'],
      infra_blessing=generator_infra_validator.outputs['blessing'],
      ingestion_report=example_gen.outputs['ingestion_report'],
      hub_root=_local_or_uri(config.paths.hub_root),
      publisher=publish.hub_publisher,
      module_name=publish.hub_module,
      dataset=data.dataset,
      data_dir=_local_or_uri(data.data_dir) if data.data_dir else '',
      architecture=gan_model.resolve_architecture(config.gan.architecture, image_shape),
      license=publish.hub_license,
      make_archive=int(publish.hub_archive),
      asset_url=publish.hub_asset_url,
  ).with_id('hub_publisher')

  components = [c for c in [
      example_gen, statistics_gen, schema_gen, example_validator, drift_baseline_resolver,
      drift_validator, validation_gate,
      transform,
      classifier_trainer, classifier_baseline, classifier_evaluator,
      classifier_infra_validator, classifier_pusher,
      gan_trainer, generator_baseline, generator_evaluator,
      generator_infra_validator, generator_pusher, hub_publisher,
  ] if c is not None]
  if not kubeflow:
    # The local runners run one node at a time, layer by layer, each layer sorted by node id
    # (tfx/utils/topsort.py topsorted_layers, from tfx/orchestration/pipeline.py), so
    # gan_trainer ran before classifier_evaluator, and a GAN that failed left a healthy
    # classifier unevaluated and unpushed. Its branch goes first; on Kubeflow the two trainers
    # run side by side instead, each on its own worker.
    gan_trainer.add_upstream_node(classifier_pusher)
  if kubeflow:
    settings = config.kubeflow
    trainers = (classifier_trainer, gan_trainer)
    for component in components:
      if component in trainers:
        component.with_platform_config(_resources(
            settings.trainer_cpu, settings.trainer_memory_gb, settings.accelerator_type,
            settings.accelerator_count))
      else:
        component.with_platform_config(_resources(settings.data_cpu, settings.data_memory_gb))

  return tfx.dsl.Pipeline(
      pipeline_name=config.name,
      pipeline_root=_local_or_uri(config.paths.pipeline_root),
      components=components,
      enable_cache=config.enable_cache,
      # On Kubeflow the cluster's ML Metadata service is used.
      metadata_connection_config=None if kubeflow else
      tfx.orchestration.metadata.sqlite_metadata_connection_config(
          _local_or_uri(config.paths.metadata_path)),
      beam_pipeline_args=(beam_pipeline_args if beam_pipeline_args is not None
                          else config.beam.pipeline_args()),
  )
