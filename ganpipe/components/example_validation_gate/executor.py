"""ExampleValidationGate's executor: fails the run when ExampleValidator found anomalies."""

from typing import Any, Dict, List

import absl.logging as logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from ganpipe.components.example_validation_gate import anomalies as anomalies_lib

ANOMALIES_KEY = 'anomalies'


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del output_dict, exec_properties
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
