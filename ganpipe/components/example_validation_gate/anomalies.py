"""Reading ExampleValidator's anomalies and describing them for people."""

import os
from typing import Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

# ExampleValidator writes one binary Anomalies proto per split: {uri}/Split-{split}/SchemaDiff.pb
ANOMALIES_FILE = 'SchemaDiff.pb'


class AnomaliesFoundError(RuntimeError):
  """Data validation found anomalies, so the pipeline stops before training."""


def load(split_uri: str) -> anomalies_pb2.Anomalies:
  """Loads the Anomalies proto of one split folder."""
  with tf.io.gfile.GFile(os.path.join(split_uri, ANOMALIES_FILE), 'rb') as f:
    return anomalies_pb2.Anomalies.FromString(f.read())


def describe(anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """One line per anomaly: `feature: short description (description)`."""
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    lines.append(f'{feature}: {info.short_description} ({info.description})')
  if anomalies.HasField('dataset_anomaly_info'):
    info = anomalies.dataset_anomaly_info
    lines.append(f'<dataset>: {info.short_description} ({info.description})')
  return lines


def check(by_split: Dict[str, anomalies_pb2.Anomalies], location: str) -> None:
  """Raises AnomaliesFoundError naming every anomaly of every split, if there are any."""
  found = [f'{split}/{line}' for split, anomalies in sorted(by_split.items())
           for line in describe(anomalies)]
  if found:
    noun = 'anomaly' if len(found) == 1 else 'anomalies'
    raise AnomaliesFoundError(
        f'data validation found {len(found)} {noun}, so training will not run: '
        + '; '.join(found)
        + f'. The anomalies are in {location}. Fix: correct the data, or curate the schema '
        '(--data.schema_path) if the new values are valid.')
