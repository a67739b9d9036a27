"""The TF Serving API's semantics, independent of transport: gRPC, REST and warmup share them."""

import asyncio
import concurrent.futures
import logging
import os
from typing import Dict, Mapping, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import batching
from serving import config as config_lib
from serving import errors
from serving import manager as manager_lib
from serving import metrics as metrics_lib
from serving import servable as servable_lib

log = logging.getLogger(__name__)

# TF Serving replays at most this many warmup records (saved_model_warmup_util.cc).
MAX_WARMUP_RECORDS = 1000
_ERROR_CODE_NAMES = {code.value[0]: code for code in grpc.StatusCode}


class ModelService:
  """Predict, Classify, GetModelMetadata, GetModelStatus and HandleReloadConfigRequest."""

  def __init__(self, model_config, poll_wait_seconds: float = 1.0,
               batching_parameters: Optional[config_lib.BatchingParameters] = None,
               session_config=None, warmup_iterations: int = 1,
               max_input_bytes: Optional[int] = None):
    """`warmup_iterations`: how often each warmup record is replayed; 0 turns warmup off.

    `max_input_bytes`: the most one request tensor may take decoded (see servable.to_ndarray).
    """
    self.max_input_bytes = max_input_bytes
    if warmup_iterations < 0:
      raise ValueError(f'warmup_iterations must not be negative, got {warmup_iterations}')
    self._warmup_iterations = warmup_iterations
    self.batcher = (batching.BatchScheduler(batching_parameters)
                    if batching_parameters is not None else None)
    self.metrics = metrics_lib.Metrics(lambda name: self.manager.has_model(name))
    self.manager = manager_lib.ModelManager(model_config, self.warmup, poll_wait_seconds,
                                            session_config, on_load=self.metrics.record_load)

  def start(self) -> None:
    self.manager.start()

  def stop(self) -> None:
    if self.batcher is not None:
      self.batcher.stop()
    self.manager.stop()

  # --- Predict ---------------------------------------------------------------------------------
  def resolve(self, spec: model_pb2.ModelSpec) -> servable_lib.LoadedVersion:
    if not spec.name:
      raise errors.invalid_argument('Missing ModelSpec name')
    version = spec.version.value if spec.HasField('version') else None
    label = spec.version_label if spec.WhichOneof('version_choice') == 'version_label' else None
    return self.manager.resolve(spec.name, version, label)

  # `deadline`, here and below: the time.monotonic() seconds after which nobody waits for the
  # answer (a gRPC call's deadline, or --rest_api_timeout_in_ms), or None. A request still
  # waiting for the model then never runs; see batching.call_by and batching.BatchScheduler.
  def predict(self, request: predict_pb2.PredictRequest,
              deadline: Optional[float] = None) -> predict_pb2.PredictResponse:
    call = _PredictCall(self, request)
    return call.respond(self.run(call.signature, call.inputs, deadline))

  async def predict_async(self, request: predict_pb2.PredictRequest,
                          executor: concurrent.futures.Executor,
                          deadline: Optional[float] = None) -> predict_pb2.PredictResponse:
    """`predict` for a coroutine: the model runs on a batch thread or on `executor`."""
    call = _PredictCall(self, request)
    return call.respond(await self.run_async(call.signature, call.inputs, executor, deadline))

  def run(self, signature: servable_lib.Signature, inputs: Mapping[str, np.ndarray],
          deadline: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Checks and runs a signature, batched when batching is on."""
    signature.check_inputs(inputs)
    if self.batcher is not None:
      return self.batcher.run(signature, inputs, deadline)
    return batching.call_by(deadline, signature, inputs)

  async def run_async(self, signature: servable_lib.Signature, inputs: Mapping[str, np.ndarray],
                      executor: concurrent.futures.Executor,
                      deadline: Optional[float] = None) -> Dict[str, np.ndarray]:
    """`run` for a coroutine; the model never runs on the event loop's thread."""
    signature.check_inputs(inputs)
    if self.batcher is not None:
      return await self.batcher.run_async(signature, inputs, executor, deadline)
    return await asyncio.get_running_loop().run_in_executor(
        executor, batching.call_by, deadline, signature, inputs)

  # --- Classify --------------------------------------------------------------------------------
  def classify(self, request: classification_pb2.ClassificationRequest,
               deadline: Optional[float] = None) -> classification_pb2.ClassificationResponse:
    call = _ClassifyCall(self, request)
    return call.respond(self.run(call.signature, call.inputs, deadline))

  async def classify_async(self, request: classification_pb2.ClassificationRequest,
                           executor: concurrent.futures.Executor,
                           deadline: Optional[float] = None
                           ) -> classification_pb2.ClassificationResponse:
    call = _ClassifyCall(self, request)
    return call.respond(await self.run_async(call.signature, call.inputs, executor, deadline))

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
    _fill_spec(response.model_spec, loaded, '')
    response.metadata['signature_def'].Pack(signature_map)
    return response

  def get_model_status(self, request: get_model_status_pb2.GetModelStatusRequest
                       ) -> get_model_status_pb2.GetModelStatusResponse:
    spec = request.model_spec
    if not spec.name:
      raise errors.invalid_argument('Missing ModelSpec name')
    version = spec.version.value if spec.HasField('version') else None
    if spec.WhichOneof('version_choice') == 'version_label':
      version = self.resolve(spec).version
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in self.manager.statuses(spec.name, version):
      entry = response.model_version_status.add()
      entry.version = status.version
      entry.state = int(status.state)
      if status.error:
        entry.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
        entry.status.error_message = status.error
    return response

  def reload_config(self, request: model_management_pb2.ReloadConfigRequest
                    ) -> model_management_pb2.ReloadConfigResponse:
    try:
      config_lib.validate_model_server_config(request.config)
    except config_lib.ConfigError as e:
      raise errors.invalid_argument(str(e)) from e
    # As TF Serving (without --allow_version_labels_for_unavailable_models): a label may only move
    # to a version that serves now, so a bad reload cannot break the clients using that label.
    for model in request.config.model_config_list.config:
      for label, version in model.version_labels.items():
        if not self.manager.is_available(model.name, version):
          raise errors.ServingError(
              grpc.StatusCode.FAILED_PRECONDITION,
              f'Request to assign label to version {version} of model {model.name}, which is not '
              f'currently available for inference (label {label!r})')
    self.manager.set_config(request.config)
    return model_management_pb2.ReloadConfigResponse()

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
        elif kind == 'classify_log':
          request = log_entry.classify_log.request
          signature = loaded.signature(request.model_spec.signature_name)
          (input_key,) = signature.inputs
          inputs = {input_key: np.array(_serialized_examples(request.input), dtype=object)}
        else:
          raise ValueError(f'warmup record {count} is a {kind}, which cannot be replayed')
        for _ in range(self._warmup_iterations):
          signature(inputs)
      except errors.ServingError as e:
        raise ValueError(f'warmup request {count} failed: {e.message}') from e
      count += 1
    return count


def _resolve_signature(service: ModelService, spec: model_pb2.ModelSpec, kind: str, method: str):
  """The version and signature a request names; INVALID_ARGUMENT unless it has `method`."""
  loaded = service.resolve(spec)
  signature = loaded.signature(spec.signature_name)
  if signature.method_name != method:
    raise errors.invalid_argument(f'Expected {kind} signature method_name to be {method}. '
                                  f'Was: {signature.method_name}')
  return loaded, signature


class _PredictCall:
  """A Predict request resolved to its signature and inputs, and how to answer it."""

  def __init__(self, service: ModelService, request: predict_pb2.PredictRequest):
    self.loaded, self.signature = _resolve_signature(service, request.model_spec, 'prediction',
                                                     servable_lib.PREDICT_METHOD)
    self.output_filter = list(request.output_filter)
    for key in self.output_filter:
      if key not in self.signature.outputs:
        raise errors.invalid_argument(
            f'output tensor alias not found in signature {self.signature.name!r}: {key}; '
            f'outputs are {sorted(self.signature.outputs)}')
    if len(set(self.output_filter)) != len(self.output_filter):
      raise errors.invalid_argument(
          f'duplicate output tensor alias in output_filter: {self.output_filter}')
    self.inputs = {key: servable_lib.to_ndarray(proto, key, service.max_input_bytes)
                   for key, proto in request.inputs.items()}

  def respond(self, outputs: Mapping[str, np.ndarray]) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    _fill_spec(response.model_spec, self.loaded, self.signature.name)
    for key in self.output_filter or outputs:
      servable_lib.fill_tensor_proto(response.outputs[key], outputs[key])
    return response


class _ClassifyCall:
  """A Classify request resolved to its signature and serialized examples, and its answer."""

  def __init__(self, service: ModelService,
               request: classification_pb2.ClassificationRequest):
    self.loaded, self.signature = _resolve_signature(service, request.model_spec, 'classification',
                                                     servable_lib.CLASSIFY_METHOD)
    if len(self.signature.inputs) != 1:
      raise errors.invalid_argument(f'classification signature {self.signature.name!r} must '
                                    f'have exactly one input, has {len(self.signature.inputs)}')
    self.examples = _serialized_examples(request.input)
    (input_key,) = self.signature.inputs
    self.inputs = {input_key: np.array(self.examples, dtype=object)}

  def respond(self, outputs: Mapping[str, np.ndarray]
              ) -> classification_pb2.ClassificationResponse:
    classes, scores = outputs.get('classes'), outputs.get('scores')
    if classes is None and scores is None:
      raise errors.ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                f'classification signature {self.signature.name!r} has neither '
                                '`classes` nor `scores` outputs')
    count = len(self.examples)
    response = classification_pb2.ClassificationResponse()
    _fill_spec(response.model_spec, self.loaded, self.signature.name)
    rows = (scores if scores is not None else classes).reshape(count, -1)
    for i in range(count):
      result = response.result.classifications.add()
      for j in range(rows.shape[1]):
        item = result.classes.add()
        if classes is not None:
          item.label = classes.reshape(count, -1)[i, j].decode('utf-8', 'replace')
        if scores is not None:
          item.score = float(scores.reshape(count, -1)[i, j])
    return response


def _fill_spec(spec: model_pb2.ModelSpec, loaded: servable_lib.LoadedVersion,
               signature_name: str) -> None:
  spec.name = loaded.model_name
  spec.version.value = loaded.version
  spec.signature_name = signature_name


def _serialized_examples(request_input) -> list:
  kind = request_input.WhichOneof('kind')
  if kind == 'example_list':
    examples = list(request_input.example_list.examples)
  elif kind == 'example_list_with_context':
    context = request_input.example_list_with_context.context
    examples = []
    for example in request_input.example_list_with_context.examples:
      merged = type(example)()
      merged.CopyFrom(context)
      merged.MergeFrom(example)
      examples.append(merged)
  else:
    raise errors.invalid_argument('Input is empty: it has neither example_list nor '
                                  'example_list_with_context')
  if not examples:
    raise errors.invalid_argument('Input has no examples')
  return [example.SerializeToString() for example in examples]


def status_code(error_code: int) -> grpc.StatusCode:
  return _ERROR_CODE_NAMES.get(error_code, grpc.StatusCode.UNKNOWN)
