"""What the conformance tests share: request builders and facts about the fixture models."""

from typing import Optional, Sequence

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2

from tests.serving import fixture_models as fm

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
REGRESS_METHOD = 'tensorflow/serving/regress'
LATEST = 2  # half_plus_two's highest version


def predict_request(inputs, *, name: str = fm.HALF_PLUS_TWO, version: Optional[int] = None,
                    label: Optional[str] = None, signature: Optional[str] = None,
                    output_filter: Sequence[str] = ()) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest(output_filter=list(output_filter))
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  if label is not None:
    request.model_spec.version_label = label
  if signature is not None:
    request.model_spec.signature_name = signature
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(value)
  return request


def x(values, dtype=tf.float32):
  return tf.make_tensor_proto(values, dtype=dtype)


def rpc_error(call, request) -> grpc.RpcError:
  with pytest.raises(grpc.RpcError) as raised:
    call(request, timeout=30)
  return raised.value

