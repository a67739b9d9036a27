"""InfraValidator's executor: unpacks artifacts, validates, writes the blessing as TFX's does."""

import os
from typing import Any, Dict, List

import absl.logging as logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from ganpipe.components import artifacts
from ganpipe.components.infra_validator import predict_requests
from ganpipe.components.infra_validator import validation

MODEL_KEY = 'model'
EXAMPLES_KEY = 'examples'
BLESSING_KEY = 'blessing'
MODEL_NAME_KEY = 'model_name'
MODEL_KIND_KEY = 'model_kind'
TIMEOUT_SECONDS_KEY = 'timeout_seconds'
NUM_REQUESTS_KEY = 'num_requests'
SERVING_BINARY_KEY = 'serving_binary'
# As TFX's InfraValidator names them, so that TFX's Pusher reads the blessing.
BLESSED_PROPERTY = 'blessed'
HAS_MODEL_PROPERTY = 'has_model'
BLESSED_FILE = 'INFRA_BLESSED'
NOT_BLESSED_FILE = 'INFRA_NOT_BLESSED'


class Executor(base_executor.BaseExecutor):
  """Writes the blessing and, for a blessed model, the model with its warmup requests."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    examples = input_dict.get(EXAMPLES_KEY) or []
    blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
    model_path = path_utils.serving_model_path(model.uri)

    result = validation.validate(
        model_path, exec_properties[MODEL_NAME_KEY], exec_properties[MODEL_KIND_KEY],
        artifact_utils.get_single_uri(examples) if examples else None,
        timeout_seconds=float(exec_properties[TIMEOUT_SECONDS_KEY]),
        num_requests=int(exec_properties[NUM_REQUESTS_KEY]),
        serving_binary=exec_properties.get(SERVING_BINARY_KEY) or '')
    logging.info('Infra validation of %s: %s', model_path, result.reason)

    io_utils.write_string_file(
        os.path.join(blessing.uri, BLESSED_FILE if result.blessed else NOT_BLESSED_FILE), '')
    blessing.set_int_custom_property(BLESSED_PROPERTY, int(result.blessed))
    blessing.set_string_custom_property(artifacts.REASON_PROPERTY, result.reason)
    if result.blessed and result.requests:
      # As TFX's _CreateWarmupModel: Pusher pushes this copy when given no `model`.
      stamped = path_utils.stamped_model_path(blessing.uri)
      io_utils.copy_dir(src=model_path, dst=stamped)
      io_utils.write_tfrecord_file(path_utils.warmup_file_path(stamped),
                                   *predict_requests.prediction_logs(result.requests))
      blessing.set_int_custom_property(HAS_MODEL_PROPERTY, 1)
