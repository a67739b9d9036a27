"""What the two evaluators concluded, read back from their artifacts for the run summary."""

import dataclasses
import json
import os
from typing import Dict, Optional

# The model names when there is a baseline: TFX's Evaluator (tfx/components/evaluator/
# executor.py) has tfma.utils.update_eval_config_with_defaults name the models tfma.CANDIDATE_KEY
# and tfma.BASELINE_KEY. With no baseline, the candidate's metrics have no model name.
CANDIDATE_MODEL = 'candidate'
BASELINE_MODEL = 'baseline'
HIGHER_IS_BETTER = 2  # tfma.MetricDirection.HIGHER_IS_BETTER, without importing TFMA here


@dataclasses.dataclass
class Figures:
  """A model's headline metric, on how many examples, why it failed, and further figures."""
  metric: Optional[float] = None
  example_count: Optional[int] = None
  reason: str = ''
  details: Dict[str, float] = dataclasses.field(default_factory=dict)
  # Why the metric is not worth printing as a number (too few images for it to mean anything).
  metric_note: str = ''


def read_generator_metrics(uri: str, metric_name: str) -> Figures:
  """The GeneratorEvaluator's `metrics.json`; empty Figures when there is none."""
  path = os.path.join(uri, 'metrics.json')
  if not os.path.exists(path):
    return Figures()
  with open(path) as f:
    figures = json.load(f)
  result = Figures(figures[metric_name], figures['num_samples'])
  if figures.get('distance_meaningful', True):
    keys = ('real_frechet_classifier_distance', 'classifier_score', 'real_classifier_score',
            'baseline_frechet_classifier_distance')
  else:
    # A distance from singular covariances measures nothing; the score does, and decided.
    keys = ('classifier_score', 'real_classifier_score')
    result.metric_note = (
        f'not meaningful on {figures["num_samples"]} images per set, no more than the '
        f'{figures["feature_dimensions"]} feature dimensions; judged by the classifier score')
  result.details = {key: figures[key] for key in keys if key in figures}
  return result


def read_tfma(uri: str, metric_name: str) -> Figures:
  """The candidate's overall metric and example count, and why each threshold failed."""
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
  result, baselines = Figures(), {}
  for slice_metrics in tfma.load_metrics(uri):
    if slice_metrics.slice_key.single_slice_keys:
      continue
    for item in slice_metrics.metric_keys_and_values:
      key, value = item.key, item.value.double_value.value
      if key.is_diff:
        continue
      if key.model_name == BASELINE_MODEL:
        baselines[key.name] = value
      elif key.model_name in ('', CANDIDATE_MODEL):
        if key.name == metric_name:
          result.metric = value
        elif key.name == 'example_count':
          result.example_count = int(value)
  failures = []
  for per_slice in tfma.load_validation_result(uri).metric_validations_per_slice:
    for failure in per_slice.failures:
      name = failure.metric_key.name
      failures.append(describe_failure(failure, result.metric if name == metric_name else None,
                                       baselines.get(name)))
  result.reason = '; '.join(failures)
  return result


def describe_failure(failure, candidate: Optional[float], baseline: Optional[float]) -> str:
  """A TFMA ValidationFailure as a sentence: the value, the threshold it missed, the baseline.

  TFMA's evaluators/metrics_validator.py leaves `message` empty for a missed threshold: what
  failed is in `metric_value` (the candidate's value, or for a change threshold its difference
  from the baseline) and `metric_threshold`.
  """
  name = failure.metric_key.name
  if not failure.HasField('metric_value'):
    return f'{name}: {failure.message or "not computed"}'
  value = failure.metric_value.double_value.value
  threshold = failure.metric_threshold
  if threshold.HasField('value_threshold'):
    bounds = threshold.value_threshold
    against = (f"; the baseline's is {baseline:.4f}" if baseline is not None
               else '; there is no blessed baseline yet')
    if bounds.HasField('lower_bound') and value < bounds.lower_bound.value:
      return f'{name} {value:.4f} is below the minimum {bounds.lower_bound.value:.4f}{against}'
    return f'{name} {value:.4f} is above the maximum {bounds.upper_bound.value:.4f}{against}'
  change = threshold.change_threshold
  relative = not change.HasField('absolute')
  limit = change.relative.value if relative else change.absolute.value
  amount = (lambda x: f'{abs(x):.1%}') if relative else (lambda x: f'{abs(x):.4f}')
  if relative and baseline:
    value = value / baseline  # TFMA compares the difference relative to the baseline's value
  was = f"the baseline's {baseline:.4f}" if baseline is not None else 'the baseline'
  now = f'{name} {candidate:.4f}' if candidate is not None else name
  higher = change.direction == HIGHER_IS_BETTER
  if (limit <= 0) == higher:  # a change allowed the bad way: a drop, when higher is better
    rule = f'at most {amount(limit)} {"below" if higher else "above"} is allowed'
  else:
    rule = f'at least {amount(limit)} {"above" if higher else "below"} is required'
  return f'{now} is {amount(value)} {"below" if value < 0 else "above"} {was}; {rule}'
