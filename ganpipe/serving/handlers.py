"""The TF Serving API's semantics, independent of transport: gRPC, REST and warmup share them."""

import asyncio
import concurrent.futures
import logging
import os
from typing import Dict, Mapping, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import regression_pb2

from ganpipe.serving import batching
from ganpipe.serving import calls
from ganpipe.serving import config as config_lib
from ganpipe.serving import errors
from ganpipe.serving import manager as manager_lib
from ganpipe.serving import metrics as metrics_lib
from ganpipe.serving import servable as servable_lib

log = logging.getLogger(__name__)

# TF Serving replays at most this many warmup records (saved_model_warmup_util.cc).
MAX_WARMUP_RECORDS = 1000
_ERROR_CODE_NAMES = {code.value[0]: code for code in grpc.StatusCode}


class ModelService:
  """Predict, Classify, GetModelMetadata, GetModelStatus and HandleReloadConfigRequest."""

  def __init__(self, model_config, poll_wait_seconds: float = 1.0,
               batching_parameters: Optional[config_lib.BatchingParameters] = None,
               session_config=None, warmup_iterations: int = 1,
               max_input_bytes: Optional[int] = None, check_method_names: bool = False,
               max_load_retries: int = 5, load_retry_interval_seconds: float = 60.0,
               allow_labels_for_unavailable_models: bool = False,
               saved_model_tags: Sequence[str] = servable_lib.DEFAULT_TAGS,
               serialize_as_tensor_content: bool = False):
    """`warmup_iterations`: how often each warmup record is replayed; 0 turns warmup off.

    `max_input_bytes`: the most one request tensor may take decoded (see servable.to_ndarray).
    `check_method_names`: TF Serving's --enable_signature_method_name_check. Off (its default),
    any signature of the right shape serves Predict, Classify and Regress, as TF2 SavedModels
    (whose signatures all say `predict`) need; on, a signature serves only its own method.
    `max_load_retries`, `load_retry_interval_seconds`: see manager.ModelManager.
    `saved_model_tags`: the tag set of the MetaGraph each version loads.
    `allow_labels_for_unavailable_models`: TF Serving's
    --allow_version_labels_for_unavailable_models; see reload_config.
    `serialize_as_tensor_content`: TF Serving's --enable_serialization_as_tensor_content: Predict
    answers with raw tensor_content, not the dtypes' repeated fields.
    """
    self._allow_labels_for_unavailable = allow_labels_for_unavailable_models
    self.serialize_as_tensor_content = serialize_as_tensor_content
    self._initial_config = model_config
    self.max_input_bytes = max_input_bytes
    self.check_method_names = check_method_names
    if warmup_iterations < 0:
      raise ValueError(f'warmup_iterations must not be negative, got {warmup_iterations}')
    self._warmup_iterations = warmup_iterations
    self.metrics = metrics_lib.Metrics(lambda name: self.manager.has_model(name))
    self.batcher = (batching.BatchScheduler(batching_parameters, self.metrics.record_batch)
                    if batching_parameters is not None else None)
    self.manager = manager_lib.ModelManager(
        model_config, self.warmup, poll_wait_seconds, session_config,
        on_load=self.metrics.record_load, max_load_retries=max_load_retries,
        load_retry_interval_seconds=load_retry_interval_seconds, saved_model_tags=saved_model_tags)

  def start(self) -> None:
    """Loads the configured models.

    Raises:
      ServingError: FAILED_PRECONDITION, for a version label the server may not start with;
        NOT_FOUND when no configured model's base path exists, so none could ever load (a
        mistyped path would otherwise wait forever). One model waiting for its base path, among
        others that serve, only logs it.
    """
    self._check_labels(self._initial_config, starting=True)
    missing = self.manager.missing_base_paths()
    if missing and len(missing) == len(self.manager.model_names()):
      raise errors.not_found('no configured model can load: ' + '; '.join(
          f'the base path {path} of model {name} does not exist'
          for name, path in sorted(missing.items())))
    self.manager.start()

  def stop(self) -> None:
    if self.batcher is not None:
      self.batcher.stop()
    self.manager.stop()

  # --- Requests ---------------------------------------------------------------------------------
  def resolve(self, spec: model_pb2.ModelSpec) -> servable_lib.LoadedVersion:
    if not spec.name:
      # ServableRequestFromModelSpec (model_servers/server_core.cc).
      raise errors.invalid_argument('ModelSpec has no name specified.')
    version = spec.version.value if spec.HasField('version') else None
    label = spec.version_label if spec.WhichOneof('version_choice') == 'version_label' else None
    loaded = self.manager.resolve(spec.name, version, label)
    metrics_lib.note_version(loaded.version)
    return loaded

  # --- Predict, Classify, Regress -------------------------------------------------------------
  # `deadline`, here and below: the time.monotonic() seconds after which nobody waits for the
  # answer (a gRPC call's deadline, or --rest_api_timeout_in_ms), or None. A request still
  # waiting for the model then never runs; see batching.call_by and batching.BatchScheduler.
  def handle(self, request, deadline: Optional[float] = None):
    """Answers a PredictRequest, ClassificationRequest or RegressionRequest."""
    call = self._call(request)
    return call.respond(self.run(call.signature, call.inputs, deadline, check=False))

  async def handle_async(self, request, executor: concurrent.futures.Executor,
                         deadline: Optional[float] = None):
    """`handle` for a coroutine: the model runs on a batch thread or on `executor`."""
    call = self._call(request)
    return call.respond(await self.run_async(call.signature, call.inputs, executor, deadline,
                                             check=False))

  predict = classify = regress = handle

  def _call(self, request):
    if isinstance(request, predict_pb2.PredictRequest):
      return calls.PredictCall(self, request)
    if isinstance(request, classification_pb2.ClassificationRequest):
      return calls.ClassifyCall(self, request.model_spec, request.input)
    if isinstance(request, regression_pb2.RegressionRequest):
      return calls.RegressCall(self, request.model_spec, request.input)
    raise TypeError(f'not a Predict, Classify or Regress request: {type(request).__name__}')

  def run(self, signature: servable_lib.Signature, inputs: Mapping[str, np.ndarray],
          deadline: Optional[float] = None, check: bool = True) -> Dict[str, np.ndarray]:
    """Runs a signature, batched when batching is on; `check`: check the inputs first (a call
    has checked its own)."""
    if check:
      signature.check_inputs(inputs)
    if self.batcher is not None:
      return self.batcher.run(signature, inputs, deadline)
    return batching.call_by(deadline, signature, inputs)

  async def run_async(self, signature: servable_lib.Signature, inputs: Mapping[str, np.ndarray],
                      executor: concurrent.futures.Executor,
                      deadline: Optional[float] = None, check: bool = True
                      ) -> Dict[str, np.ndarray]:
    """`run` for a coroutine; the model never runs on the event loop's thread."""
    if check:
      signature.check_inputs(inputs)
    if self.batcher is not None:
      return await self.batcher.run_async(signature, inputs, executor, deadline)
    return await asyncio.get_running_loop().run_in_executor(
        executor, batching.call_by, deadline, signature, inputs)

  # --- MultiInference ------------------------------------------------------------------------
  async def multi_inference_async(self, request: inference_pb2.MultiInferenceRequest,
                                  executor: concurrent.futures.Executor,
                                  deadline: Optional[float] = None
                                  ) -> inference_pb2.MultiInferenceResponse:
    """Classify and Regress tasks of one model on the same examples, as TF Serving runs them."""
    tasks = calls.multi_inference_calls(self, request)
    response = inference_pb2.MultiInferenceResponse()
    for call in tasks:
      answer = call.respond(await self.run_async(call.signature, call.inputs, executor, deadline,
                                                 check=False))
      result = response.results.add()
      result.model_spec.CopyFrom(answer.model_spec)
      if isinstance(call, calls.ClassifyCall):
        result.classification_result.CopyFrom(answer.result)
      else:
        result.regression_result.CopyFrom(answer.result)
    return response

  # --- Metadata and status -------------------------------------------------------------------
  def get_model_metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                         ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not request.metadata_field:
      raise errors.invalid_argument('GetModelMetadataRequest must specify at least one '
                                    'metadata_field')
    for field in request.metadata_field:
      if field != 'signature_def':
        raise errors.invalid_argument(f'Metadata field {field} is not supported')
    loaded = self.resolve(request.model_spec)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in loaded.signature_defs.items():
      signature_map.signature_def[name].CopyFrom(signature_def)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    calls.fill_spec(response.model_spec, loaded, '')
    response.metadata['signature_def'].Pack(signature_map)
    return response

  def get_model_status(self, request: get_model_status_pb2.GetModelStatusRequest
                       ) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version the server has known of the model, newest first, as TF Serving lists them
    (model_servers/get_model_status_impl.cc): a version label is not looked at, and a version
    unloaded, or of a model removed from the config, stays listed as END."""
    if not request.HasField('model_spec'):
      raise errors.invalid_argument('Missing ModelSpec')
    spec = request.model_spec
    version = spec.version.value if spec.HasField('version') else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in sorted(self.manager.statuses(spec.name, version), key=lambda s: -s.version):
      entry = response.model_version_status.add()
      entry.version = status.version
      entry.state = int(status.state)
      if status.error:
        entry.status.error_code = status.error_code.value[0]
        entry.status.error_message = status.error
    return response

  def reload_config(self, request: model_management_pb2.ReloadConfigRequest
                    ) -> model_management_pb2.ReloadConfigResponse:
    try:
      config_lib.validate_model_server_config(request.config)
    except config_lib.ConfigError as e:
      raise errors.invalid_argument(str(e)) from e
    self._check_labels(request.config)
    self.manager.set_config(request.config)
    return model_management_pb2.ReloadConfigResponse()

  def _check_labels(self, config, starting: bool = False) -> None:
    """Refuses a label on a version that does not serve, as UpdateModelVersionLabelMap does
    (model_servers/server_core.cc), so that a bad config cannot break the label's clients.

    It runs before the config's models load, so at start-up no version serves yet, and any
    label needs --allow_version_labels_for_unavailable_models. With it, a new label, or one
    left where it was, may name a version that does not serve (a canary before its push; until
    it loads, requests by that label are NOT_FOUND); moving a label still needs the version to
    serve.
    """
    for model in config.model_config_list.config:
      current = {} if starting else self.manager.version_labels(model.name)
      for label, version in model.version_labels.items():
        if self._allow_labels_for_unavailable and current.get(label, version) == version:
          continue
        if starting or not self.manager.is_available(model.name, version):
          raise errors.ServingError(
              grpc.StatusCode.FAILED_PRECONDITION,
              f'Request to assign label to version {version} of model {model.name}, which is not '
              'currently available for inference')

  # --- Warmup ----------------------------------------------------------------------------------
  def warmup(self, loaded: servable_lib.LoadedVersion) -> int:
    """Replays `assets.extra/tf_serving_warmup_requests` on a version before it serves.

    Each record is replayed `warmup_iterations` times (TF Serving's
    --num_request_iterations_for_warmup); with 0 (--enable_model_warmup=false) none is.

    Returns:
      The number of warmup records replayed.
    Raises:
      ValueError: a record is not a PredictionLog this server can replay, or a request fails;
        the version then does not load, as in TF Serving.
    """
    if not self._warmup_iterations or not os.path.exists(loaded.warmup_file):
      return 0
    count = 0
    for record in tf.data.TFRecordDataset(loaded.warmup_file).take(MAX_WARMUP_RECORDS):
      log_entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
      kind = log_entry.WhichOneof('log_type')
      try:
        if kind == 'predict_log':
          request = log_entry.predict_log.request
          signature = loaded.signature(request.model_spec.signature_name)
          inputs = {k: servable_lib.to_ndarray(v, k) for k, v in request.inputs.items()}
          signature.check_inputs(inputs)
        elif kind in ('classify_log', 'regress_log'):
          request = getattr(log_entry, kind).request
          signature = loaded.signature(request.model_spec.signature_name)
          (input_key,) = signature.inputs
          inputs = {input_key: np.array(calls.serialized_examples(request.input), dtype=object)}
        else:
          raise ValueError(f'warmup record {count} is a {kind}, which cannot be replayed')
        for _ in range(self._warmup_iterations):
          signature(inputs)
      except errors.ServingError as e:
        raise ValueError(f'warmup request {count} failed: {e.message}') from e
      count += 1
    return count


def status_code(error_code: int) -> grpc.StatusCode:
  return _ERROR_CODE_NAMES.get(error_code, grpc.StatusCode.UNKNOWN)
