"""A gRPC client for TF Serving's PredictionService and ModelService."""

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import grpc
import numpy as np
# The tensorflow_serving protos import TensorFlow's own, which loads all of TensorFlow anyway;
# callers that must start fast (the CLI) import this module only when they need it.
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

DEFAULT_TARGET = 'localhost:8500'
# What TF Serving runs when a request names no signature (kDefaultServingSignatureDefKey).
DEFAULT_SIGNATURE = 'serving_default'


class ServingError(Exception):
  """A call to the model server failed.

  Attributes:
    code: the `grpc.StatusCode` the server (or gRPC) reported, or None when the server answered
      but the answer does not match the signature the client expects.
  """

  def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
    super().__init__(message)
    self.code = code


def ssl_credentials(root_cert_path: Optional[str] = None, *,
                    private_key_path: Optional[str] = None,
                    cert_chain_path: Optional[str] = None) -> grpc.ChannelCredentials:
  """TLS credentials for `ServingClient(credentials=...)`.

  Args:
    root_cert_path: PEM file of the certificate authority that signed the server's certificate;
      None uses the system's roots.
    private_key_path: the client's PEM private key, for servers that require client certificates.
    cert_chain_path: the client's PEM certificate chain, with `private_key_path`.

  Returns:
    Channel credentials.

  Raises:
    OSError: a file cannot be read.
  """
  def read(path):
    if path is None:
      return None
    with open(path, 'rb') as f:
      return f.read()
  return grpc.ssl_channel_credentials(root_certificates=read(root_cert_path),
                                      private_key=read(private_key_path),
                                      certificate_chain=read(cert_chain_path))


class ServingClient:
  """Talks to a TF Serving compatible server over gRPC.

  Every call has a deadline of `timeout` seconds per attempt. Calls that fail with UNAVAILABLE
  (server down, restarting or overloaded) are retried `retries` times, waiting `backoff`,
  2 * `backoff`, 4 * `backoff`, ... seconds in between; other failures are final and raised at
  once as `ServingError`.

  Use it as a context manager, or call `close()`, to release the channel.
  """

  def __init__(self, target: str = DEFAULT_TARGET, *, timeout: float = 10.0, retries: int = 3,
               backoff: float = 0.2, max_message_bytes: int = 64 * 1024 * 1024,
               credentials: Optional[grpc.ChannelCredentials] = None):
    """Opens a channel; it connects lazily, on the first call.

    Args:
      target: `host:port` of the server's gRPC endpoint.
      timeout: seconds each attempt may take.
      retries: how many times to retry a call that failed with UNAVAILABLE.
      backoff: seconds to wait before the first retry; doubles on each retry.
      max_message_bytes: the largest request and response, in bytes (gRPC's default is 4 MiB,
        too small for batches of images).
      credentials: TLS credentials (see `ssl_credentials`); None is an insecure channel.

    Raises:
      ValueError: a bad argument.
    """
    if timeout <= 0:
      raise ValueError(f'timeout must be positive, got {timeout}')
    if retries < 0 or backoff < 0:
      raise ValueError(f'retries and backoff must not be negative, got {retries} and {backoff}')
    self.target = target
    self.timeout = timeout
    self.retries = retries
    self.backoff = backoff
    options = [('grpc.max_send_message_length', max_message_bytes),
               ('grpc.max_receive_message_length', max_message_bytes)]
    if credentials is None:
      self._channel = grpc.insecure_channel(target, options=options)
    else:
      self._channel = grpc.secure_channel(target, credentials, options=options)
    self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

  def __enter__(self) -> 'ServingClient':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def close(self) -> None:
    """Closes the channel; calls made afterwards fail."""
    self._channel.close()

  def predict(self, model: str, inputs: Mapping[str, Any], *,
              signature: str = DEFAULT_SIGNATURE, version: Optional[int] = None,
              version_label: Optional[str] = None,
              output_filter: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Calls PredictionService.Predict.

    Args:
      model: the model's name on the server.
      inputs: input alias -> value: a numpy array (its dtype is kept), a list, bytes (a scalar
        string) or a TensorProto; anything `tf.make_tensor_proto` accepts.
      signature: the signature to run.
      version: a specific version; None (and no label) is the latest.
      version_label: a version label such as 'stable', instead of `version`.
      output_filter: output aliases to return; None returns all.

    Returns:
      Output alias -> numpy array (string tensors are object arrays of bytes).

    Raises:
      ServingError: the call failed.
      ValueError: both `version` and `version_label`, or an input that cannot be a tensor.
    """
    request = predict_pb2.PredictRequest()
    _fill_model_spec(request.model_spec, model, version, version_label)
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
      try:
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
      except (TypeError, ValueError) as error:
        raise ValueError(f'input {alias!r} cannot be made a tensor: {error}') from error
    request.output_filter.extend(output_filter or ())
    response = self._call(self._predictions.Predict, request, 'Predict',
                          describe(model, version, version_label, signature))
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}

  def model_status(self, model: str, version: Optional[int] = None) -> List[Dict[str, Any]]:
    """Calls ModelService.GetModelStatus.

    Args:
      model: the model's name on the server.
      version: one version; None gives all versions the server knows.

    Returns:
      One `{'version': int, 'state': str, 'error': str}` per version, newest first; `state` is
      e.g. 'AVAILABLE' or 'LOADING', `error` is '' or 'CODE: message'.

    Raises:
      ServingError: the call failed.
    """
    request = get_model_status_pb2.GetModelStatusRequest()
    _fill_model_spec(request.model_spec, model, version, None)
    response = self._call(self._models.GetModelStatus, request, 'GetModelStatus',
                          describe(model, version, None, None))
    states = get_model_status_pb2.ModelVersionStatus.State
    codes = (get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name['status']
             .message_type.fields_by_name['error_code'].enum_type.values_by_number)
    statuses = []
    for status in response.model_version_status:
      error = ''
      if status.status.error_code:
        code = status.status.error_code
        code = codes[code].name if code in codes else str(code)
        error = f'{code}: {status.status.error_message}'
      statuses.append({'version': status.version, 'state': states.Name(status.state),
                       'error': error})
    return sorted(statuses, key=lambda s: -s['version'])

  def model_metadata(self, model: str, version: Optional[int] = None, *,
                     version_label: Optional[str] = None) -> Dict[str, Any]:
    """Calls PredictionService.GetModelMetadata for the model's signatures.

    Args:
      model: the model's name on the server.
      version: a specific version; None (and no label) is the latest.
      version_label: a version label such as 'canary', instead of `version`.

    Returns:
      Signature name -> `{'method_name': str, 'inputs': {alias: tensor}, 'outputs': {alias:
      tensor}}`, where a tensor is `{'dtype': 'float32', 'shape': [None, 28, 28, 1]}`; None is an
      unknown dimension, a shape of None an unknown rank, a dtype of None an op (no tensor).

    Raises:
      ServingError: the call failed, or the answer holds no signatures.
    """
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    _fill_model_spec(request.model_spec, model, version, version_label)
    request.metadata_field.append('signature_def')
    where = describe(model, version, version_label, None)
    response = self._call(self._predictions.GetModelMetadata, request, 'GetModelMetadata', where)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if ('signature_def' not in response.metadata or
        not response.metadata['signature_def'].Unpack(signature_map)):
      raise ServingError(f'GetModelMetadata for {where} at {self.target} returned no '
                         'SignatureDefMap under metadata["signature_def"]')
    return {name: {'method_name': signature.method_name,
                   'inputs': {alias: _tensor_info(info)
                              for alias, info in sorted(signature.inputs.items())},
                   'outputs': {alias: _tensor_info(info)
                               for alias, info in sorted(signature.outputs.items())}}
            for name, signature in sorted(signature_map.signature_def.items())}

  def _call(self, rpc, request, method: str, where: str):
    """Calls `rpc` with the deadline, retrying UNAVAILABLE; raises ServingError on failure."""
    attempts = self.retries + 1
    for attempt in range(attempts):
      try:
        return rpc(request, timeout=self.timeout)
      except grpc.RpcError as error:
        code, details = error.code(), ' '.join(str(error.details()).split())
        if code == grpc.StatusCode.UNAVAILABLE and attempt + 1 < attempts:
          time.sleep(self.backoff * 2**attempt)
          continue
        message = f'{method} for {where} at {self.target} failed: {code.name}: {details}'
        if code == grpc.StatusCode.UNAVAILABLE:
          message += (f' (gave up after {attempts} attempt{"s" if attempts > 1 else ""}). '
                      f'Is the server running at {self.target}?')
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
          message += (f' (no answer within the {self.timeout:g} s timeout; raise the timeout if '
                      'the model is slow to answer)')
        raise ServingError(message, code) from None
    raise AssertionError('unreachable')


def _fill_model_spec(spec, model: str, version: Optional[int],
                     version_label: Optional[str]) -> None:
  if version is not None and version_label is not None:
    raise ValueError(f'pass a version or a version label, not both (got {version} and '
                     f'{version_label!r})')
  spec.name = model
  if version is not None:
    spec.version.value = version
  if version_label is not None:
    spec.version_label = version_label


def describe(model: str, version: Optional[int], version_label: Optional[str],
             signature: Optional[str]) -> str:
  """E.g. "model 'classifier' version 3, signature 'serving_default'"."""
  text = f'model {model!r}'
  if version is not None:
    text += f' version {version}'
  elif version_label is not None:
    text += f' version label {version_label!r}'
  if signature is not None:
    text += f', signature {signature!r}'
  return text


def _tensor_info(info) -> Dict[str, Any]:
  # DT_INVALID (0) marks an op rather than a tensor, such as the init op's "output".
  try:
    dtype = tf.dtypes.as_dtype(info.dtype).name if info.dtype else None
  except TypeError:
    dtype = f'type {info.dtype}'
  shape = None if info.tensor_shape.unknown_rank else [
      dim.size if dim.size >= 0 else None for dim in info.tensor_shape.dim]
  return {'dtype': dtype, 'shape': shape}
