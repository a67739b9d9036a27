"""GeneratorEvaluator: judges a trained generator with the classifier trained in the same run."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.generator_evaluator import executor


class GeneratorEvaluatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      executor.NUM_SAMPLES_KEY: component_spec.ExecutionParameter(type=int),
      executor.MAX_DISTANCE_RATIO_KEY: component_spec.ExecutionParameter(type=float),
      executor.MIN_SCORE_RATIO_KEY: component_spec.ExecutionParameter(type=float),
      executor.MAX_DISTANCE_INCREASE_KEY: component_spec.ExecutionParameter(type=float),
      executor.SEED_KEY: component_spec.ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.CLASSIFIER_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      executor.BASELINE_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      executor.EVALUATION_KEY: component_spec.ChannelParameter(type=artifacts.GeneratorEvaluation),
      executor.BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
  }


class GeneratorEvaluator(base_component.BaseComponent):
  """Fréchet classifier distance and classifier score of generated vs real eval images.

  The real images are `num_samples` of each split (fewer when a split is smaller), drawn with
  `seed` from the whole split and stratified over classes. Blesses the generator when the
  distance is at most `max_distance_ratio` times the real train images' distance to the eval
  images, its classifier score is at least `min_score_ratio` of the real eval images', and its
  distance is at most `max_distance_increase` above the baseline's (re-measured now, with this
  run's classifier). With no more images than the classifier has features, the distances mean
  nothing, and the classifier score alone decides.

  Outputs:
    evaluation: GeneratorEvaluation, `metrics.json` and `samples.png`.
    blessing: ModelBlessing, as TFX's Evaluator writes it, so TFX's Pusher honours it.
  """
  SPEC_CLASS = GeneratorEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel, classifier: types.BaseChannel,
               examples: types.BaseChannel, baseline_model: Optional[types.BaseChannel] = None,
               num_samples: int = 1000, max_distance_ratio: float = 20.0,
               min_score_ratio: float = 0.6, max_distance_increase: float = 0.25,
               seed: int = 0):
    super().__init__(spec=GeneratorEvaluatorSpec(
        model=model, classifier=classifier, examples=examples, baseline_model=baseline_model,
        num_samples=num_samples, max_distance_ratio=_float(max_distance_ratio),
        min_score_ratio=_float(min_score_ratio),
        max_distance_increase=float(max_distance_increase), seed=seed,
        evaluation=types.Channel(type=artifacts.GeneratorEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))


def _float(value):
  """Floats stay floats; a RuntimeParameter (Kubeflow) passes through to be resolved at run time."""
  return float(value) if isinstance(value, (int, float)) else value
