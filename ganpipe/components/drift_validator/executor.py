"""DriftValidator's executor: measures the new span's drift from the baseline span's statistics."""

import os
from typing import Any, Dict, List

import absl.logging as logging
import tensorflow as tf
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from ganpipe.components.drift_validator import drift

STATISTICS_KEY = 'statistics'
BASELINE_STATISTICS_KEY = 'baseline_statistics'
SCHEMA_KEY = 'schema'
DRIFT_REPORT_KEY = 'drift_report'
DRIFT_PROPERTY = 'drift'
DRIFT_FILE = 'drift.json'
# The split compared: the one the Trainers learn from.
SPLIT = 'train'


class Executor(base_executor.BaseExecutor):
  """Writes the drift report; never fails on drift (the validation gate decides)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del exec_properties
    statistics = artifact_utils.get_single_instance(input_dict[STATISTICS_KEY])
    baselines = input_dict.get(BASELINE_STATISTICS_KEY) or []
    measurements, baseline_span = [], None
    if baselines:
      baseline = baselines[0]
      baseline_span = int(baseline.span)
      schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
          artifact_utils.get_single_uri(input_dict[SCHEMA_KEY])))
      measurements = drift.measure(
          stats_artifact_utils.load_statistics(statistics, SPLIT).proto(),
          stats_artifact_utils.load_statistics(baseline, SPLIT).proto(),
          schema)
    found = drift.report(int(statistics.span), baseline_span, measurements)
    output = artifact_utils.get_single_instance(output_dict[DRIFT_REPORT_KEY])
    output.set_string_custom_property(DRIFT_PROPERTY, drift.to_json(found))
    # TFX's local launcher creates output folders; KFP's backend does not (the compiled
    # package's tests run the executor as the backend's launcher does).
    tf.io.gfile.makedirs(output.uri)
    with tf.io.gfile.GFile(os.path.join(output.uri, DRIFT_FILE), 'w') as f:
      f.write(drift.to_json(found))
    logging.info('Drift: %s', drift.describe(found))

