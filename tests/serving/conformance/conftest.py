"""TF Serving protocol conformance: the same tests pass against tensorflow_model_server.

Only tensorflow_serving.apis, grpc and HTTP are spoken. Expected codes and messages are TF
Serving's own (predict_util, server_core, json_tensor, http_server in tensorflow/serving).
With TF_SERVING_TARGET (and TF_SERVING_REST_TARGET) set, they run against that server; see
tests/serving/conftest.py.
"""

import pytest
import tensorflow as tf

from tests.serving import fixture_models as fm
from tests.serving.conformance.protocol import predict_request, x


@pytest.fixture(autouse=True)
def _server_still_serves(prediction_stub):
  """After every test, bad request or not, the server must still answer correctly."""
  yield
  response = prediction_stub.Predict(predict_request({'x': x([[2.0]])}, version=1), timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(1, 2.0)]]
