"""ExampleValidationGate: passes clean anomalies artifacts, stops on any anomaly."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from ganpipe.components.example_validation_gate import anomalies as anomalies_lib
from ganpipe.components.example_validation_gate import executor


def _anomalies_artifact(tmp_path, by_split):
  """An ExampleAnomalies artifact laid out as ExampleValidator writes it."""
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(tmp_path / 'anomalies')
  artifact.split_names = '[' + ', '.join(f'"{s}"' for s in by_split) + ']'
  for split, anomalies in by_split.items():
    folder = os.path.join(artifact.uri, f'Split-{split}')
    os.makedirs(folder)
    with open(os.path.join(folder, anomalies_lib.ANOMALIES_FILE), 'wb') as f:
      f.write(anomalies.SerializeToString())
  return artifact


def _with_anomaly(feature, short, long):
  anomalies = anomalies_pb2.Anomalies()
  info = anomalies.anomaly_info[feature]
  info.short_description = short
  info.description = long
  return anomalies


def test_clean_splits_pass(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {'train': anomalies_pb2.Anomalies(),
                                            'eval': anomalies_pb2.Anomalies()})
  executor.Executor().Do({'anomalies': [artifact]}, {}, {})  # must not raise


def test_any_anomaly_stops_with_every_anomaly_named(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {
      'train': anomalies_pb2.Anomalies(),
      'eval': _with_anomaly('label', 'Out-of-range values', 'Unexpectedly large value: 12.'),
  })
  with pytest.raises(anomalies_lib.AnomaliesFoundError,
                     match=r'found 1 anomaly.*eval/label: Out-of-range values '
                           r'\(Unexpectedly large value: 12.\)') as raised:
    executor.Executor().Do({'anomalies': [artifact]}, {}, {})
  assert artifact.uri in str(raised.value)
  assert 'Fix:' in str(raised.value)


def test_dataset_level_anomalies_count(tmp_path):
  anomalies = _with_anomaly('image', 'Column dropped', 'The feature was present in fewer '
                            'examples than expected.')
  anomalies.dataset_anomaly_info.short_description = 'Low num examples'
  anomalies.dataset_anomaly_info.description = 'Too few examples.'
  artifact = _anomalies_artifact(tmp_path, {'eval': anomalies})
  with pytest.raises(anomalies_lib.AnomaliesFoundError, match=r'found 2 anomalies.*<dataset>'):
    executor.Executor().Do({'anomalies': [artifact]}, {}, {})
