"""Drift of a new span from a baseline span: TFDV's comparators, with the schema's thresholds."""

import dataclasses
import json
from typing import Any, Dict, List, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

KINDS = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity distance',
         anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
             'Jensen-Shannon divergence',
         anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
             'normalized absolute difference'}


@dataclasses.dataclass(frozen=True)
class Measurement:
  feature: str
  kind: str
  value: float
  threshold: float

  @property
  def drifted(self) -> bool:
    """Above the threshold, as TFDV reports a drift anomaly."""
    return self.value > self.threshold

  def describe(self) -> str:
    return f'{self.feature}: {self.kind} {self.value:.3f} > {self.threshold:g}'


def measure(statistics: statistics_pb2.DatasetFeatureStatisticsList,
            baseline: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema) -> List[Measurement]:
  """Every drift comparator of the schema applied to `statistics` against `baseline`.

  `tfdv.validate_statistics(..., previous_statistics=...)` computes a distance for each feature
  whose `drift_comparator` has a threshold; features without one are not compared.
  """
  anomalies = tfdv.validate_statistics(statistics, schema, previous_statistics=baseline)
  return sorted((Measurement('.'.join(info.path.step), KINDS.get(m.type, str(m.type)),
                             float(m.value), float(m.threshold))
                 for info in anomalies.drift_skew_info for m in info.drift_measurements),
                key=lambda m: m.feature)


def report(span: int, baseline_span: Optional[int],
           measurements: List[Measurement]) -> Dict[str, Any]:
  """The JSON form of a drift check: spans, figures and the features above their thresholds."""
  return {'span': span, 'baseline_span': baseline_span,
          'measurements': [dataclasses.asdict(m) for m in measurements],
          'drifted': [m.feature for m in measurements if m.drifted]}


def measurements_of(drift_report: Dict[str, Any]) -> List[Measurement]:
  return [Measurement(**m) for m in drift_report['measurements']]


def describe(drift_report: Dict[str, Any]) -> str:
  """One line: the figures of a drift check, or that there was no baseline to compare with."""
  if drift_report['baseline_span'] is None:
    return f'span {drift_report["span"]}: no baseline (no blessed model yet), drift not measured'
  figures = ', '.join(f'{m.feature} {m.kind} {m.value:.3f} (max {m.threshold:g})'
                      for m in measurements_of(drift_report)) or 'no drift comparators in schema'
  return f'span {drift_report["span"]} vs span {drift_report["baseline_span"]}: {figures}'


class DriftError(RuntimeError):
  """The new span drifted from the baseline span, so the pipeline stops before training."""


def check(drift_report: Dict[str, Any], allow_drift: bool) -> List[str]:
  """The drifted features' lines; raises DriftError when there are any and drift is not allowed."""
  drifted = [m.describe() for m in measurements_of(drift_report) if m.drifted]
  if drifted and not allow_drift:
    raise DriftError(
        f'span {drift_report["span"]} drifted from span {drift_report["baseline_span"]}, which '
        f'trained the latest blessed model, so training will not run: {"; ".join(drifted)}. '
        'Fix: check the new data, or pass --data.allow_drift to train on it anyway.')
  return drifted


def to_json(drift_report: Dict[str, Any]) -> str:
  return json.dumps(drift_report, sort_keys=True)
