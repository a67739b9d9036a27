"""TF Serving protocol conformance: the same tests pass against tensorflow_model_server.

Only tensorflow_serving.apis, grpc and HTTP are spoken. Expected codes and messages are TF
Serving's own (predict_util, server_core, json_tensor, http_server in tensorflow/serving).
"""

import base64
import json
import re
import urllib.error
import urllib.request
from typing import Any, Optional, Sequence, Tuple

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fixture_models as fm

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
LATEST = 2  # half_plus_two's highest version


def _predict_request(inputs, *, name: str = fm.HALF_PLUS_TWO, version: Optional[int] = None,
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


def _x(values, dtype=tf.float32):
  return tf.make_tensor_proto(values, dtype=dtype)


def _rpc_error(call, request) -> grpc.RpcError:
  with pytest.raises(grpc.RpcError) as raised:
    call(request, timeout=30)
  return raised.value


@pytest.fixture(autouse=True)
def _server_still_serves(prediction_stub):
  """After every test, bad request or not, the server must still answer correctly."""
  yield
  response = prediction_stub.Predict(_predict_request({'x': _x([[2.0]])}, version=1), timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(1, 2.0)]]


# --- gRPC Predict -------------------------------------------------------------------------------


def test_predict_without_a_version_uses_the_latest(prediction_stub):
  response = prediction_stub.Predict(_predict_request({'x': _x([[1.0], [4.0], [-3.5]])}),
                                     timeout=30)
  y = tf.make_ndarray(response.outputs['y'])
  np.testing.assert_array_equal(y, [[fm.half_plus_two_y(LATEST, v)] for v in (1.0, 4.0, -3.5)])
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs['x_squared']),
                                [[1.0], [16.0], [12.25]])
  assert response.model_spec.name == fm.HALF_PLUS_TWO
  assert response.model_spec.version.value == LATEST
  assert response.model_spec.signature_name == fm.PREDICT_SIGNATURE


@pytest.mark.parametrize('version', [1, 2])
def test_predict_by_version(prediction_stub, version):
  response = prediction_stub.Predict(
      _predict_request({'x': _x([[10.0]])}, version=version, signature=fm.PREDICT_SIGNATURE),
      timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(version, 10.0)]]
  assert response.model_spec.version.value == version


@pytest.mark.parametrize('label, version', [(fm.STABLE_LABEL, 1), (fm.CANARY_LABEL, 2)])
def test_predict_by_label(prediction_stub, label, version):
  response = prediction_stub.Predict(_predict_request({'x': _x([[6.0]])}, label=label),
                                     timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(version, 6.0)]]
  assert response.model_spec.version.value == version


@pytest.mark.parametrize('wanted', [['y'], ['x_squared'], ['y', 'x_squared']])
def test_output_filter_returns_only_the_named_outputs(prediction_stub, wanted):
  response = prediction_stub.Predict(
      _predict_request({'x': _x([[3.0]])}, version=1, output_filter=wanted), timeout=30)
  assert sorted(response.outputs) == sorted(wanted)
  if 'y' in wanted:
    assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(1, 3.0)]]


def test_bytes_input_over_grpc(prediction_stub):
  response = prediction_stub.Predict(
      _predict_request({'text': _x([b'\xff\x00abc', b''], tf.string)}, name=fm.STRING_LENGTH),
      timeout=30)
  assert tf.make_ndarray(response.outputs['length']).tolist() == [5, 0]
  assert tf.make_ndarray(response.outputs['echo_bytes']).tolist() == [b'\xff\x00abc', b'']


# --- gRPC errors --------------------------------------------------------------------------------


@pytest.mark.parametrize('kwargs, inputs, code, pattern', [
    pytest.param({'name': 'no_such_model'}, {'x': [[1.0]]}, grpc.StatusCode.NOT_FOUND,
                 'no_such_model', id='unknown-model'),
    pytest.param({'name': ''}, {'x': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT, '',
                 id='no-model-name'),
    pytest.param({'version': 99}, {'x': [[1.0]]}, grpc.StatusCode.NOT_FOUND, '99',
                 id='unknown-version'),
    # TF Serving: ServerCore::GetModelVersionForLabel returns InvalidArgument, not NotFound.
    pytest.param({'label': 'no_such_label'}, {'x': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 'no_such_label', id='unknown-label'),
    # TF Serving: "Serving signature key "..." not found." is a FailedPrecondition.
    pytest.param({'signature': 'no_such_signature'}, {'x': [[1.0]]},
                 grpc.StatusCode.FAILED_PRECONDITION, 'no_such_signature', id='unknown-signature'),
    pytest.param({}, {'not_an_input': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 r'not_an_input(?s:.*)\bx\b', id='wrong-input-name'),
    pytest.param({}, {}, grpc.StatusCode.INVALID_ARGUMENT, r'\bx\b', id='missing-input'),
    pytest.param({}, {'x': [[1.0]], 'surplus': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 'surplus', id='extra-input'),
    pytest.param({'output_filter': ['no_such_output']}, {'x': [[1.0]]},
                 grpc.StatusCode.INVALID_ARGUMENT, 'no_such_output', id='unknown-output-filter'),
    # TF Serving (predict_util.cc): "duplicate output tensor alias".
    pytest.param({'output_filter': ['y', 'y']}, {'x': [[1.0]]},
                 grpc.StatusCode.INVALID_ARGUMENT, 'duplicate output tensor alias',
                 id='duplicate-output-filter'),
])
def test_predict_errors(prediction_stub, kwargs, inputs, code, pattern):
  request = _predict_request({k: _x(v) for k, v in inputs.items()}, **kwargs)
  error = _rpc_error(prediction_stub.Predict, request)
  assert error.code() == code, error.details()
  assert re.search(pattern, error.details()), error.details()


@pytest.mark.parametrize('tensor, words', [
    pytest.param(_x([[1]], tf.int64), ['float', 'int64'], id='int64-for-float'),
    pytest.param(_x([[b'1']], tf.string), ['float', 'string'], id='string-for-float'),
])
def test_wrong_dtype_is_invalid_argument_naming_both_types(prediction_stub, tensor, words):
  error = _rpc_error(prediction_stub.Predict, _predict_request({'x': tensor}))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  for word in words:
    assert word in error.details().lower(), error.details()


@pytest.mark.parametrize('values', [
    pytest.param([[1.0, 2.0, 3.0]], id='three-columns'),
    pytest.param([1.0, 2.0], id='rank-1'),
])
def test_wrong_shape_is_invalid_argument_about_the_shape(prediction_stub, values):
  error = _rpc_error(prediction_stub.Predict, _predict_request({'x': _x(values)}))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert re.search(r'shape|size', error.details(), re.IGNORECASE), error.details()


# --- Classify -----------------------------------------------------------------------------------


def _classification_request(xs, signature: str) -> classification_pb2.ClassificationRequest:
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = fm.HALF_PLUS_TWO
  request.model_spec.signature_name = signature
  for x in xs:
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.append(x)
  return request


def test_classify_on_the_classify_signature(prediction_stub):
  response = prediction_stub.Classify(
      _classification_request([1.0, 4.0], fm.CLASSIFY_SIGNATURE), timeout=30)
  scores = [[c.score for c in result.classes] for result in response.result.classifications]
  assert scores == [[fm.half_plus_two_y(LATEST, 1.0)], [fm.half_plus_two_y(LATEST, 4.0)]]
  # The signature has scores but no classes, so TF Serving leaves the labels empty.
  assert [c.label for r in response.result.classifications for c in r.classes] == ['', '']
  assert response.model_spec.version.value == LATEST


def test_classify_on_a_predict_signature_is_invalid_argument(prediction_stub):
  error = _rpc_error(prediction_stub.Classify,
                     _classification_request([1.0], fm.PREDICT_SIGNATURE))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert CLASSIFY_METHOD in error.details(), error.details()


# --- Metadata and status ------------------------------------------------------------------------


def _metadata(prediction_stub, version: Optional[int] = None):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
  request.model_spec.name = fm.HALF_PLUS_TWO
  if version is not None:
    request.model_spec.version.value = version
  response = prediction_stub.GetModelMetadata(request, timeout=30)
  signatures = get_model_metadata_pb2.SignatureDefMap()
  assert response.metadata['signature_def'].Unpack(signatures)
  return response, signatures.signature_def


def _dims(tensor_info):
  return [d.size for d in tensor_info.tensor_shape.dim]


@pytest.mark.parametrize('version', [None, 1])
def test_metadata_describes_both_signatures(prediction_stub, version):
  response, signatures = _metadata(prediction_stub, version)
  assert response.model_spec.name == fm.HALF_PLUS_TWO
  assert response.model_spec.version.value == (version or LATEST)
  predict = signatures[fm.PREDICT_SIGNATURE]
  assert predict.method_name == PREDICT_METHOD
  assert sorted(predict.inputs) == ['x'] and sorted(predict.outputs) == ['x_squared', 'y']
  assert predict.inputs['x'].dtype == tf.float32.as_datatype_enum
  assert _dims(predict.inputs['x']) == [-1, 1]
  assert predict.outputs['y'].dtype == tf.float32.as_datatype_enum
  classify = signatures[fm.CLASSIFY_SIGNATURE]
  assert classify.method_name == CLASSIFY_METHOD
  assert sorted(classify.inputs) == ['inputs'] and sorted(classify.outputs) == ['scores']
  assert classify.inputs['inputs'].dtype == tf.string.as_datatype_enum


@pytest.mark.parametrize('name, fields, code', [
    pytest.param('no_such_model', ['signature_def'], grpc.StatusCode.NOT_FOUND, id='unknown-model'),
    pytest.param(fm.HALF_PLUS_TWO, [], grpc.StatusCode.INVALID_ARGUMENT, id='no-field'),
    pytest.param(fm.HALF_PLUS_TWO, ['no_such_field'], grpc.StatusCode.INVALID_ARGUMENT,
                 id='unknown-field'),
])
def test_metadata_errors(prediction_stub, name, fields, code):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
  request.model_spec.name = name
  error = _rpc_error(prediction_stub.GetModelMetadata, request)
  assert error.code() == code, error.details()


def _status(model_stub, name: str, version: Optional[int] = None):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  return model_stub.GetModelStatus(request, timeout=30)


def test_model_status_lists_every_version_available(model_stub):
  response = _status(model_stub, fm.HALF_PLUS_TWO)
  states = {s.version: (s.state, s.status.error_code) for s in response.model_version_status}
  assert states == {1: (AVAILABLE, 0), 2: (AVAILABLE, 0)}


def test_model_status_of_one_version(model_stub):
  response = _status(model_stub, fm.HALF_PLUS_TWO, version=1)
  assert [(s.version, s.state) for s in response.model_version_status] == [(1, AVAILABLE)]


@pytest.mark.parametrize('name, version', [('no_such_model', None), (fm.HALF_PLUS_TWO, 99)])
def test_model_status_not_found(model_stub, name, version):
  with pytest.raises(grpc.RpcError) as raised:
    _status(model_stub, name, version)
  assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.details()


# --- ganpipe extensions (tensorflow_model_server has none of these) -----------------------------


def test_oversize_request_is_resource_exhausted(own_server):
  # 80 MiB: over ganpipe's 64 MiB default. tensorflow_model_server accepts up to 2 GiB
  # (ServerBuilder::SetMaxMessageSize(kint32max)), which no test can send, hence own_server.
  rows = 80 * 1024 * 1024 // 4
  tensor = tf.make_tensor_proto(np.zeros([1, 1], np.float32))
  tensor.tensor_shape.dim[0].size = rows
  tensor.tensor_content = bytes(rows * 4)
  with grpc.insecure_channel(own_server.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    error = _rpc_error(stub.Predict, _predict_request({'x': tensor}))
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
    error = _rpc_error(stub.Predict, _predict_request({'x': tensor}))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert "input 'x' of shape [1000000000, 1] would take 4000000000 bytes decoded" in (
        error.details())
    # A negative dimension is malformed, not a size.
    tensor.tensor_shape.dim[0].size = -1
    error = _rpc_error(stub.Predict, _predict_request({'x': tensor}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert 'negative dimension' in error.details()
    # And the server serves on.
    ok = stub.Predict(_predict_request({'x': tf.make_tensor_proto([[2.0]], tf.float32)}),
                      timeout=30)
    assert tf.make_ndarray(ok.outputs['y']).tolist() == [[fm.half_plus_two_y(2, 2.0)]]


def test_an_error_quoting_a_huge_request_still_arrives_with_its_status(own_server):
  # Status messages quote what was sent; uncut, these two exceed gRPC's 16 KiB header limit and
  # the client would see only "received metadata size exceeds hard limit".
  long_name = _predict_request({'x': tf.make_tensor_proto([[1.0]], tf.float32)},
                               name='m' * 20000)
  many_inputs = _predict_request({f'not_an_input_{i:05d}': tf.make_tensor_proto([[1.0]],
                                                                               tf.float32)
                                  for i in range(3000)})
  with grpc.insecure_channel(own_server.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for request, code in ((long_name, grpc.StatusCode.NOT_FOUND),
                          (many_inputs, grpc.StatusCode.INVALID_ARGUMENT)):
      error = _rpc_error(stub.Predict, request)
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


# --- REST ---------------------------------------------------------------------------------------


def _http(method: str, url: str, body: Any = None) -> Tuple[int, Any]:
  """Returns (HTTP status, parsed JSON body); bytes bodies are sent as they are."""
  data = None
  if body is not None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
  request = urllib.request.Request(url, data=data, method=method,
                                   headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=30) as response:
      status, raw = response.status, response.read()
  except urllib.error.HTTPError as error:
    status, raw = error.code, error.read()
  try:
    return status, json.loads(raw)
  except ValueError:
    pytest.fail(f'{method} {url} answered {status} with a body that is not JSON: {raw[:300]!r}')
    raise  # unreachable; pytest.fail raises


def _predict_url(rest_base: str, name: str = fm.HALF_PLUS_TWO, suffix: str = '') -> str:
  return f'{rest_base}/v1/models/{name}{suffix}:predict'


@pytest.mark.parametrize('instances', [
    pytest.param([[1.0], [4.0]], id='values'),
    pytest.param([{'x': [1.0]}, {'x': [4.0]}], id='named'),
])
def test_rest_row_format(rest_base, instances):
  status, body = _http('POST', _predict_url(rest_base), {'instances': instances})
  assert status == 200, body
  assert body == {'predictions': [
      {'y': [fm.half_plus_two_y(LATEST, 1.0)], 'x_squared': [1.0]},
      {'y': [fm.half_plus_two_y(LATEST, 4.0)], 'x_squared': [16.0]},
  ]}


@pytest.mark.parametrize('inputs', [
    pytest.param({'x': [[1.0], [4.0]]}, id='named'),
    pytest.param([[1.0], [4.0]], id='single-input-shorthand'),
])
def test_rest_columnar_format(rest_base, inputs):
  status, body = _http('POST', _predict_url(rest_base), {'inputs': inputs})
  assert status == 200, body
  assert body == {'outputs': {
      'y': [[fm.half_plus_two_y(LATEST, 1.0)], [fm.half_plus_two_y(LATEST, 4.0)]],
      'x_squared': [[1.0], [16.0]],
  }}


@pytest.mark.parametrize('suffix, version', [
    ('', LATEST), ('/versions/1', 1), ('/versions/2', 2),
    (f'/labels/{fm.STABLE_LABEL}', 1), (f'/labels/{fm.CANARY_LABEL}', 2),
])
def test_rest_and_grpc_give_the_same_predictions(rest_base, prediction_stub, suffix, version):
  xs = [-3.25, 0.0, 1.5, 1000.125, 2.0**-7]  # exact in float32, so answers compare exactly
  status, body = _http('POST', _predict_url(rest_base, suffix=suffix),
                       {'signature_name': fm.PREDICT_SIGNATURE, 'inputs': {'x': [[v] for v in xs]}})
  assert status == 200, body
  response = prediction_stub.Predict(_predict_request({'x': _x([[v] for v in xs])},
                                                      version=version), timeout=30)
  grpc_y = tf.make_ndarray(response.outputs['y'])
  np.testing.assert_array_equal(np.array(body['outputs']['y'], np.float32), grpc_y)
  np.testing.assert_array_equal(grpc_y, np.array([[fm.half_plus_two_y(version, v)] for v in xs],
                                                 np.float32))


def test_rest_b64_bytes_in_and_out(rest_base):
  raw = [b'\xff\x00abc', b'']
  instances = [{'b64': base64.b64encode(value).decode()} for value in raw]
  status, body = _http('POST', _predict_url(rest_base, fm.STRING_LENGTH), {'instances': instances})
  assert status == 200, body
  assert [p['length'] for p in body['predictions']] == [5, 0]
  # TF Serving answers string outputs named *_bytes as {"b64": ...}.
  assert [base64.b64decode(p['echo_bytes']['b64']) for p in body['predictions']] == raw


def test_rest_plain_strings(rest_base):
  status, body = _http('POST', _predict_url(rest_base, fm.STRING_LENGTH),
                       {'inputs': {'text': ['hello', 'hi']}})
  assert status == 200, body
  assert body['outputs']['length'] == [5, 2]


def test_rest_classify(rest_base):
  status, body = _http('POST', f'{rest_base}/v1/models/{fm.HALF_PLUS_TWO}:classify',
                       {'signature_name': fm.CLASSIFY_SIGNATURE,
                        'examples': [{'x': 1.0}, {'x': 4.0}]})
  assert status == 200, body
  assert body == {'results': [[['', fm.half_plus_two_y(LATEST, 1.0)]],
                              [['', fm.half_plus_two_y(LATEST, 4.0)]]]}


@pytest.mark.parametrize('suffix, versions', [('', {1, 2}), ('/versions/1', {1})])
def test_rest_model_status(rest_base, suffix, versions):
  status, body = _http('GET', f'{rest_base}/v1/models/{fm.HALF_PLUS_TWO}{suffix}')
  assert status == 200, body
  entries = body['model_version_status']
  assert {int(e['version']) for e in entries} == versions
  assert {e['state'] for e in entries} == {'AVAILABLE'}
  assert {e['status']['error_code'] for e in entries} == {'OK'}


def test_rest_metadata(rest_base):
  status, body = _http('GET', f'{rest_base}/v1/models/{fm.HALF_PLUS_TWO}/versions/1/metadata')
  assert status == 200, body
  assert body['model_spec']['name'] == fm.HALF_PLUS_TWO
  assert int(body['model_spec']['version']) == 1
  signatures = body['metadata']['signature_def']['signature_def']
  predict = signatures[fm.PREDICT_SIGNATURE]
  assert predict['method_name'] == PREDICT_METHOD
  assert predict['inputs']['x']['dtype'] == 'DT_FLOAT'
  assert [int(d['size']) for d in predict['inputs']['x']['tensor_shape']['dim']] == [-1, 1]
  assert signatures[fm.CLASSIFY_SIGNATURE]['method_name'] == CLASSIFY_METHOD


@pytest.mark.parametrize('method, path, body, status', [
    pytest.param('GET', '/v1/models/no_such_model', None, 404, id='status-unknown-model'),
    pytest.param('GET', f'/v1/models/{fm.HALF_PLUS_TWO}/versions/99', None, 404,
                 id='status-unknown-version'),
    pytest.param('POST', '/v1/models/no_such_model:predict', {'instances': [[1.0]]}, 404,
                 id='predict-unknown-model'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}/versions/99:predict',
                 {'instances': [[1.0]]}, 404, id='predict-unknown-version'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}/labels/no_such_label:predict',
                 {'instances': [[1.0]]}, 400, id='predict-unknown-label'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict',
                 {'instances': [{'not_an_input': [1.0]}]}, 400, id='wrong-input-name'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict', {'instances': [['one']]},
                 400, id='wrong-type'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict',
                 {'instances': [[1.0, 2.0, 3.0]]}, 400, id='wrong-shape'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict',
                 {'instances': [[1.0]], 'inputs': {'x': [[1.0]]}}, 400, id='instances-and-inputs'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict', {'signature_name': 'nope',
                                                                    'instances': [[1.0]]},
                 400, id='unknown-signature'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict', b'{"instances": [[1.0]',
                 400, id='malformed-json'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:predict', {'neither': 1}, 400,
                 id='no-instances-or-inputs'),
    pytest.param('POST', f'/v1/models/{fm.HALF_PLUS_TWO}:classify',
                 {'signature_name': fm.PREDICT_SIGNATURE, 'examples': [{'x': 1.0}]}, 400,
                 id='classify-on-predict-signature'),
])
def test_rest_errors(rest_base, method, path, body, status):
  got, answer = _http(method, rest_base + path, body)
  assert got == status, answer
  assert isinstance(answer.get('error'), str) and answer['error'], answer
