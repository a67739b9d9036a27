"""Drift: TFDV's comparators with the schema's thresholds, the report, the gate's decision and
the baseline: the statistics of the run that trained the latest blessed model."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.drift_validator import baseline
from ganpipe.components.drift_validator import drift
from ganpipe.components.drift_validator import executor
from ganpipe.components.example_validation_gate import executor as gate_executor
from ganpipe.components.image_schema_gen import schema_rules
from tests.pipeline import mlmd_writer

CLASSES = ('digit_1', 'digit_2', 'digit_3')


def _figures(seed, class_shares, brightness, count=300):
  """Per-image features as ImageExampleGen writes them, for one span."""
  rng = np.random.default_rng(seed)
  return pd.DataFrame({
      'label_name': rng.choice(CLASSES, size=count, p=class_shares),
      'original_height': np.full(count, 8, np.int64),
      'original_width': np.full(count, 8, np.int64),
      'mean_intensity': np.clip(rng.normal(0.25 + brightness, 0.05, count), 0, 1)})


def _statistics(tmp_path, name, span, figures):
  """An ExampleStatistics artifact laid out as StatisticsGen writes it (Split-train)."""
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = str(tmp_path / name)
  artifact.split_names = '["train"]'
  artifact.span = span
  os.makedirs(os.path.join(artifact.uri, 'Split-train'))
  with open(os.path.join(artifact.uri, 'Split-train', 'FeatureStats.pb'), 'wb') as f:
    f.write(tfdv.generate_statistics_from_dataframe(figures).SerializeToString())
  return artifact


def _schema(tmp_path, figures, max_label_drift=0.2, max_feature_drift=0.2):
  schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(figures))
  schema_rules.set_drift_comparators(schema, max_label_drift, max_feature_drift)
  artifact = standard_artifacts.Schema()
  artifact.uri = str(tmp_path / 'schema')
  os.makedirs(artifact.uri)
  tfdv.write_schema_text(schema, os.path.join(artifact.uri, 'schema.pbtxt'))
  return artifact


def _drift(tmp_path, current, previous=None, **thresholds):
  """Runs DriftValidator's executor; returns its report as the gate reads it."""
  output = artifacts.DriftReport()
  output.uri = str(tmp_path / 'drift')
  os.makedirs(output.uri)
  inputs = {'statistics': [_statistics(tmp_path, 'new', 3, current)],
            'schema': [_schema(tmp_path, current, **thresholds)]}
  if previous is not None:
    inputs['baseline_statistics'] = [_statistics(tmp_path, 'old', 1, previous)]
  executor.Executor().Do(inputs, {'drift_report': [output]}, {})
  with open(os.path.join(output.uri, 'drift.json')) as f:
    assert json.load(f) == json.loads(output.get_string_custom_property('drift'))
  return output


def _report(artifact):
  return json.loads(artifact.get_string_custom_property('drift'))


EVEN = (1 / 3, 1 / 3, 1 / 3)
SHIFTED = (0.7, 0.2, 0.1)


def test_alike_spans_are_measured_within_the_thresholds(tmp_path):
  report = _report(_drift(tmp_path, _figures(1, EVEN, 0), _figures(2, EVEN, 0)))
  assert report['span'] == 3 and report['baseline_span'] == 1
  kinds = {m['feature']: m['kind'] for m in report['measurements']}
  assert kinds == {'label_name': 'L-infinity distance',
                   'mean_intensity': 'Jensen-Shannon divergence',
                   'original_height': 'Jensen-Shannon divergence',
                   'original_width': 'Jensen-Shannon divergence'}
  assert report['drifted'] == []
  assert all(m['value'] < m['threshold'] for m in report['measurements'])


def test_a_shifted_class_balance_and_brighter_images_drift(tmp_path):
  report = _report(_drift(tmp_path, _figures(1, SHIFTED, 0.3), _figures(2, EVEN, 0)))
  values = {m['feature']: m['value'] for m in report['measurements']}
  assert report['drifted'] == ['label_name', 'mean_intensity']
  # L-infinity: the largest change of a class's share, about 0.70 - 0.33.
  assert values['label_name'] == pytest.approx(0.37, abs=0.08)
  assert values['original_height'] == 0.0


def test_the_thresholds_come_from_the_schema(tmp_path):
  report = _report(_drift(tmp_path, _figures(1, SHIFTED, 0.3), _figures(2, EVEN, 0),
                          max_label_drift=0.9, max_feature_drift=1.0))
  assert report['drifted'] == []
  assert {m['threshold'] for m in report['measurements']} == {0.9, 1.0}


def test_the_first_span_has_no_baseline(tmp_path):
  report = _report(_drift(tmp_path, _figures(1, EVEN, 0)))
  assert report == {'span': 3, 'baseline_span': None, 'measurements': [], 'drifted': []}
  assert drift.describe(report) == 'span 3: no baseline (no blessed model yet), drift not measured'


def _gate(tmp_path, drift_report, allow_drift):
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = str(tmp_path / 'anomalies')
  anomalies.split_names = '["train"]'
  os.makedirs(os.path.join(anomalies.uri, 'Split-train'))
  with open(os.path.join(anomalies.uri, 'Split-train', 'SchemaDiff.pb'), 'wb') as f:
    f.write(anomalies_pb2.Anomalies().SerializeToString())
  gate_executor.Executor().Do({'anomalies': [anomalies], 'drift_report': [drift_report]}, {},
                              {'allow_drift': int(allow_drift)})


def test_the_gate_stops_on_drift_naming_each_feature_and_distance_unless_allowed(tmp_path):
  drifted = _drift(tmp_path, _figures(1, SHIFTED, 0.3), _figures(2, EVEN, 0))
  with pytest.raises(drift.DriftError, match=(
      r'^span 3 drifted from span 1, which trained the latest blessed model, so training will '
      r'not run: label_name: L-infinity distance 0\.\d{3} > 0\.2; mean_intensity: '
      r'Jensen-Shannon divergence 0\.\d{3} > 0\.2\. Fix: .*--data.allow_drift')) as raised:
    _gate(tmp_path / 'stopped', drifted, allow_drift=False)
  assert '\n' not in str(raised.value)
  _gate(tmp_path / 'allowed', drifted, allow_drift=True)  # must not raise
  _gate(tmp_path / 'alike', _drift(tmp_path / 'b', _figures(1, EVEN, 0), _figures(2, EVEN, 0)),
        allow_drift=False)


def _run_with(writer, run, blessed):
  """One pipeline run in MLMD: statistics, a trained model and its blessing."""
  statistics = writer.artifact('ExampleStatistics', f'/stats/{run}')
  writer.execution('statistics_gen', run, {}, {'statistics': statistics})
  model = writer.artifact('Model', f'/model/{run}')
  writer.execution('classifier_trainer', run, {}, {'model': model})
  return statistics, model, blessed


def _as_tfx(artifact, cls):
  result = cls()
  result.id = artifact.id
  return result


def _blessing(model_id, blessed):
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_int_custom_property('current_model_id', model_id)
  blessing.set_int_custom_property('blessed', int(blessed))
  return blessing


def _baseline(writer, runs):
  resolved = baseline.TrainingRunStatisticsStrategy().resolve_artifacts(writer.store, {
      'model': [_as_tfx(model, standard_artifacts.Model) for _, model, _ in runs],
      'model_blessing': [_blessing(model.id, blessed) for _, model, blessed in runs],
      'statistics': [_as_tfx(s, standard_artifacts.ExampleStatistics) for s, _, _ in runs]})
  # TFX's resolver node fails unless a strategy returns every input key.
  assert sorted(resolved) == ['model', 'model_blessing', 'statistics']
  return [s.id for s in resolved['statistics']]


def test_the_baseline_is_the_statistics_of_the_run_of_the_latest_blessed_model(tmp_path):
  writer = mlmd_writer.MlmdWriter(str(tmp_path / 'metadata.sqlite'))
  first = _run_with(writer, 'run-1', blessed=True)
  second = _run_with(writer, 'run-2', blessed=False)
  assert _baseline(writer, [first, second]) == [first[0].id]
  third = _run_with(writer, 'run-3', blessed=True)
  assert _baseline(writer, [first, second, third]) == [third[0].id]
  assert _baseline(writer, [_run_with(writer, 'run-4', blessed=False)]) == []
