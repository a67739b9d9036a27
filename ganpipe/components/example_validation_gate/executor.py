"""ExampleValidationGate's executor: fails the run on anomalies, or on drift not allowed."""

import json
from typing import Any, Dict, List

import absl.logging as logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from ganpipe.components.drift_validator import drift
from ganpipe.components.drift_validator import executor as drift_executor
from ganpipe.components.example_validation_gate import anomalies as anomalies_lib

ANOMALIES_KEY = 'anomalies'
DRIFT_REPORT_KEY = 'drift_report'
ALLOW_DRIFT_KEY = 'allow_drift'


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del output_dict
    artifact = artifact_utils.get_single_instance(input_dict[ANOMALIES_KEY])
    by_split = {
        split: anomalies_lib.load(artifact_utils.get_split_uri([artifact], split))
        for split in artifact_utils.decode_split_names(artifact.split_names)
    }
    try:
      anomalies_lib.check(by_split, artifact.uri)
    except anomalies_lib.AnomaliesFoundError as error:
      logging.error('%s', error)
      raise
    logging.info('No anomalies in splits %s.', ', '.join(sorted(by_split)))
    for report_artifact in input_dict.get(DRIFT_REPORT_KEY) or []:
      found = json.loads(report_artifact.get_string_custom_property(
          drift_executor.DRIFT_PROPERTY))
      try:
        drifted = drift.check(found, bool(exec_properties.get(ALLOW_DRIFT_KEY)))
      except drift.DriftError as error:
        logging.error('%s', error)
        raise
      if drifted:
        logging.warning('Training on drifted data (--data.allow_drift): %s', '; '.join(drifted))
      else:
        logging.info('Drift: %s', drift.describe(found))
