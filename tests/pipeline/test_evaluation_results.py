"""Reading the evaluators' conclusions back: TFMA's metrics and failures, the generator's."""

import json
import os

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import evaluation_results
from ganpipe.pipeline import pipeline

METRIC = 'sparse_categorical_accuracy'


def _tfma_output(uri, candidate, baseline=None, min_accuracy=0.9):
  """What TFX's Evaluator leaves for these accuracies: metrics and validations, as TFMA writes
  and validates them (the pipeline's EvalConfig, completed as tfx's evaluator executor does)."""
  eval_config = tfma.utils.update_eval_config_with_defaults(
      pipeline.classifier_eval_config(config_lib.EvaluationConfig(min_accuracy=min_accuracy)),
      has_baseline=baseline is not None, rubber_stamp=True)
  name = tfma.CANDIDATE_KEY if baseline is not None else ''
  metrics = {metric_types.MetricKey(METRIC, model_name=name): candidate,
             metric_types.MetricKey('example_count', model_name=name): 362.0}
  if baseline is not None:
    metrics[metric_types.MetricKey(METRIC, model_name=tfma.BASELINE_KEY)] = baseline
    metrics[metric_types.MetricKey(METRIC, model_name=name, is_diff=True)] = candidate - baseline
  validation = metrics_validator.validate_metrics(((), metrics), eval_config)
  os.makedirs(uri)
  with tf.io.TFRecordWriter(os.path.join(uri, 'metrics-00000-of-00001.tfrecord')) as f:
    f.write(writer.convert_slice_metrics_to_proto(((), metrics), None).SerializeToString())
  with tf.io.TFRecordWriter(os.path.join(uri, 'validations.tfrecord')) as f:
    f.write(validation.SerializeToString())
  return str(uri)


def test_a_value_under_the_floor_is_told_with_the_floor_and_that_there_is_no_baseline(tmp_path):
  figures = evaluation_results.read_tfma(_tfma_output(tmp_path / 'e', 0.45), METRIC)
  assert figures.metric == pytest.approx(0.45) and figures.example_count == 362
  assert figures.reason == (f'{METRIC} 0.4500 is below the minimum 0.9000; there is no blessed '
                            'baseline yet')


def test_a_drop_below_the_baseline_is_told_with_both_values_and_the_drop_allowed(tmp_path):
  figures = evaluation_results.read_tfma(_tfma_output(tmp_path / 'e', 0.93, baseline=0.97),
                                         METRIC)
  assert figures.metric == pytest.approx(0.93)
  assert figures.reason == (f"{METRIC} 0.9300 is 0.0400 below the baseline's 0.9700; at most "
                            '0.0100 below is allowed')


def test_both_thresholds_missed(tmp_path):
  figures = evaluation_results.read_tfma(_tfma_output(tmp_path / 'e', 0.5, baseline=0.97),
                                         METRIC)
  assert figures.reason.split('; ') == [
      f"{METRIC} 0.5000 is below the minimum 0.9000", "the baseline's is 0.9700",
      f"{METRIC} 0.5000 is 0.4700 below the baseline's 0.9700", 'at most 0.0100 below is allowed']


def test_a_blessed_classifier_has_no_reason(tmp_path):
  figures = evaluation_results.read_tfma(_tfma_output(tmp_path / 'e', 0.97, baseline=0.965),
                                         METRIC)
  assert figures.reason == '' and figures.metric == pytest.approx(0.97)


def test_a_generator_distance_from_too_few_images_is_not_given_as_a_number(tmp_path):
  figures = {'num_samples': 40, 'feature_dimensions': 128, 'distance_meaningful': False,
             'frechet_classifier_distance': 3.1, 'real_frechet_classifier_distance': 47.1,
             'classifier_score': 2.5, 'real_classifier_score': 2.6}
  (tmp_path / 'metrics.json').write_text(json.dumps(figures))
  read = evaluation_results.read_generator_metrics(str(tmp_path), 'frechet_classifier_distance')
  assert read.metric_note == ('not meaningful on 40 images per set, no more than the 128 feature '
                              'dimensions; judged by the classifier score')
  assert read.details == {'classifier_score': 2.5, 'real_classifier_score': 2.6}
  figures.update(num_samples=300, distance_meaningful=True)
  (tmp_path / 'metrics.json').write_text(json.dumps(figures))
  read = evaluation_results.read_generator_metrics(str(tmp_path), 'frechet_classifier_distance')
  assert read.metric_note == '' and read.metric == 3.1 and read.example_count == 300
  assert read.details['real_frechet_classifier_distance'] == 47.1
