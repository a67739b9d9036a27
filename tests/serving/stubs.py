"""gRPC stubs, requests and waits for tests that start ganpipe's server on half_plus_two models."""

import time
from typing import Callable, Dict, Optional

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fixture_models as fm

# Base paths are scanned five times a second, so a pushed version serves within a test's patience.
POLL = ['--file_system_poll_wait_seconds', '0.2']


def half_plus_two(version: int) -> fm.BuildFn:
  return lambda export_dir: fm.build_half_plus_two(export_dir, version)


def predict_request(name: str, rows, version: Optional[int] = None) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  request.inputs['x'].CopyFrom(tf.make_tensor_proto(rows, dtype=tf.float32))
  return request


def model_status(stub, name: str) -> Dict[int, get_model_status_pb2.ModelVersionStatus]:
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  return {s.version: s for s in stub.GetModelStatus(request, timeout=10).model_version_status}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
  deadline = time.monotonic() + timeout_s
  while not condition():
    if time.monotonic() > deadline:
      pytest.fail(f'timed out after {timeout_s:.0f} s waiting for {what()}')
    time.sleep(0.05)


class Client:
  """Stubs on one channel to a server."""

  def __init__(self, target: str):
    self.channel = grpc.insecure_channel(target)
    self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

  def y(self, name: str, x: float, version: Optional[int] = None, label: Optional[str] = None):
    """(version that answered, y) for one row."""
    request = predict_request(name, [[x]], version)
    if label is not None:
      request.model_spec.version_label = label
    response = self.predict.Predict(request, timeout=30)
    return response.model_spec.version.value, tf.make_ndarray(response.outputs['y']).tolist()

  def close(self):
    self.channel.close()
