"""Requests made as TF Serving's own example clients make them (tensorflow_serving/example/ at
2.16.1), written anew: each speaks only tensorflow_serving.apis, grpc and HTTP, and reads the
answer as that client reads it. They run against any TF-Serving-compatible server, ours or
tensorflow_model_server (see tests/serving/conftest.py).
"""

import base64
import json
import urllib.request

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.serving import fixture_models as fm


def _solid_jpeg(colour: str) -> bytes:
  pixel = [255 if name == colour else 0 for name in fm.COLOURS]
  return tf.io.encode_jpeg(tf.constant([[pixel] * 16] * 16, tf.uint8)).numpy()


def test_a_client_reading_float_val_gets_the_values_as_mnist_client_does(prediction_stub):
  # mnist_client.py: the image as `make_tensor_proto(values, shape=[1, n])` (tensor_content in
  # the request), Predict.future with a deadline, then `numpy.array(outputs[...].float_val)`.
  request = predict_pb2.PredictRequest()
  request.model_spec.name = fm.HALF_PLUS_TWO
  request.model_spec.signature_name = fm.PREDICT_SIGNATURE
  xs = [4.0, 6.0, 8.0]
  request.inputs['x'].CopyFrom(tf.make_tensor_proto(np.array(xs, np.float32), shape=[3, 1]))
  assert request.inputs['x'].tensor_content  # As the example client sends it.
  result = prediction_stub.Predict.future(request, 5.0).result()
  # TF Serving answers in the typed field (Tensor::AsProtoField, predict_util.cc), which is
  # all that float_val reads; tensor_content would leave it empty.
  scores = np.array(result.outputs['y'].float_val)
  assert scores.tolist() == [fm.half_plus_two_y(2, x) for x in xs]
  assert not result.outputs['y'].tensor_content


def test_a_scalar_jpeg_runs_as_a_batch_of_one_as_resnet_client_grpc_sends_it(prediction_stub):
  # resnet_client_grpc.py with MODEL_ACCEPT_JPG: `make_tensor_proto(jpeg_bytes)`, with no
  # shape, is a DT_STRING scalar; the answer is read from float_val and argmax'ed.
  for colour in fm.COLOURS:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = fm.COLOUR
    request.model_spec.signature_name = 'serving_default'
    request.inputs['images'].CopyFrom(tf.make_tensor_proto(_solid_jpeg(colour)))
    assert not request.inputs['images'].tensor_shape.dim  # A scalar, not a batch of one.
    result = prediction_stub.Predict(request, 10.0)
    scores = list(result.outputs['scores'].float_val)
    assert len(scores) == 3 and fm.COLOURS[int(np.argmax(scores))] == colour, scores


def test_a_b64_instance_is_decoded_as_resnet_client_posts_it(rest_base):
  # resnet_client.py with MODEL_ACCEPT_JPG: '{"instances" : [{"b64": "..."}]}' to :predict,
  # raise_for_status, then response.json()['predictions'][0] as the scores (one output).
  for colour in fm.COLOURS:
    body = '{"instances" : [{"b64": "%s"}]}' % base64.b64encode(_solid_jpeg(colour)).decode()
    request = urllib.request.Request(f'{rest_base}/v1/models/{fm.COLOUR}:predict',
                                     data=body.encode(), method='POST')
    with urllib.request.urlopen(request, timeout=30) as response:
      assert response.status == 200
      prediction = json.load(response)['predictions'][0]
    assert len(prediction) == 3 and fm.COLOURS[int(np.argmax(prediction))] == colour, prediction
