"""What ganpipe serve adds to the protocol; tensorflow_model_server has none of these, so each
test runs against our own server only."""


import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fixture_models as fm
from tests.serving.conformance.protocol import predict_request, rpc_error


def test_oversize_request_is_resource_exhausted(own_server):
  # 80 MiB: over ganpipe's 64 MiB default. tensorflow_model_server accepts up to 2 GiB
  # (ServerBuilder::SetMaxMessageSize(kint32max)), which no test can send, hence own_server.
  rows = 80 * 1024 * 1024 // 4
  tensor = tf.make_tensor_proto(np.zeros([1, 1], np.float32))
  tensor.tensor_shape.dim[0].size = rows
  tensor.tensor_content = bytes(rows * 4)
  with grpc.insecure_channel(own_server.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    error = rpc_error(stub.Predict, predict_request({'x': tensor}))
  assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()


def test_a_tiny_request_that_decodes_to_gigabytes_is_resource_exhausted(own_server):
  # One float for a shape of 10^9: 4 GB once decoded, from a request of a few bytes. Decoding it
  # would take the server's memory; ganpipe refuses any input over its message size limit.
  tensor = tf.make_tensor_proto(np.zeros([1, 1], np.float32))
  tensor.ClearField('tensor_content')
  tensor.float_val.append(1.0)
  tensor.tensor_shape.dim[0].size = 10**9
  with grpc.insecure_channel(own_server.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    error = rpc_error(stub.Predict, predict_request({'x': tensor}))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert "input 'x' of shape [1000000000, 1] would take 4000000000 bytes decoded" in (
        error.details())
    # A negative dimension is malformed, not a size.
    tensor.tensor_shape.dim[0].size = -1
    error = rpc_error(stub.Predict, predict_request({'x': tensor}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert 'negative dimension' in error.details()
    # And the server serves on.
    ok = stub.Predict(predict_request({'x': tf.make_tensor_proto([[2.0]], tf.float32)}),
                      timeout=30)
    assert tf.make_ndarray(ok.outputs['y']).tolist() == [[fm.half_plus_two_y(2, 2.0)]]


def test_an_error_quoting_a_huge_request_still_arrives_with_its_status(own_server):
  # Status messages quote what was sent; uncut, these two exceed gRPC's 16 KiB header limit and
  # the client would see only "received metadata size exceeds hard limit".
  long_name = predict_request({'x': tf.make_tensor_proto([[1.0]], tf.float32)},
                               name='m' * 20000)
  many_inputs = predict_request({f'not_an_input_{i:05d}': tf.make_tensor_proto([[1.0]],
                                                                               tf.float32)
                                  for i in range(3000)})
  with grpc.insecure_channel(own_server.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for request, code in ((long_name, grpc.StatusCode.NOT_FOUND),
                          (many_inputs, grpc.StatusCode.INVALID_ARGUMENT)):
      error = rpc_error(stub.Predict, request)
      assert error.code() == code, error.details()
      assert error.details().endswith('more characters)'), error.details()[-200:]
      assert len(error.details()) < 2100


def test_health_check_is_serving(own_server, grpc_channel):
  from grpc_health.v1 import health_pb2  # pylint: disable=import-outside-toplevel
  from grpc_health.v1 import health_pb2_grpc  # pylint: disable=import-outside-toplevel
  stub = health_pb2_grpc.HealthStub(grpc_channel)
  for service in ('', 'tensorflow.serving.PredictionService'):
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
    assert response.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_the_services(own_server, grpc_channel):
  from grpc_reflection.v1alpha import reflection_pb2  # pylint: disable=import-outside-toplevel
  from grpc_reflection.v1alpha import reflection_pb2_grpc  # pylint: disable=import-outside-toplevel
  stub = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
  responses = stub.ServerReflectionInfo(
      iter([reflection_pb2.ServerReflectionRequest(list_services='')]), timeout=30)
  names = {s.name for r in responses for s in r.list_services_response.service}
  assert {'tensorflow.serving.PredictionService', 'tensorflow.serving.ModelService',
          'grpc.health.v1.Health'} <= names
