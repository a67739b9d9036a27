"""REST requests and answers as TF Serving 2.16 reads and writes them, message for message.

The rules are TF Serving's util/json_tensor.cc (FillPredictRequestFromJson, AddValueToTensor,
MakeJsonFromTensors), model_servers/http_rest_api_handler.cc (ProcessRequest, the routes) and
model_servers/http_rest_api_util.cc (ToJsonString for status and metadata).
"""

import base64
import http.client
import json
from typing import Any, Tuple

import pytest

from tests.serving import fixture_models as fm


def _request(rest_base: str, method: str, path: str, body: Any = None) -> Tuple[int, str, bytes]:
  """(status, Content-Type, raw body); bytes bodies go as they are, others as JSON."""
  host = rest_base[len('http://'):]
  connection = http.client.HTTPConnection(host, timeout=30)
  try:
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    connection.request(method, path, body=data)
    response = connection.getresponse()
    return response.status, response.getheader('Content-Type', ''), response.read()
  finally:
    connection.close()


def _error(rest_base: str, method: str, path: str, body: Any = None) -> Tuple[int, str]:
  status, _, raw = _request(rest_base, method, path, body)
  return status, json.loads(raw)['error']


PREDICT = f'/v1/models/{fm.HALF_PLUS_TWO}:predict'
ADD_ONE = f'/v1/models/{fm.STRING_LENGTH}:predict'


def _pretty(value) -> str:
  """JsonValueToString: rapidjson's PrettyWriter, 4-space indents."""
  return json.dumps(value, indent=4)


# --- Values of the wrong JSON type are refused, not converted (AddValueToTensor) ----------------


@pytest.mark.parametrize('path, body, message', [
    pytest.param(ADD_ONE, {'signature_name': fm.ADD_ONE_SIGNATURE, 'inputs': {'n': [7.9]}},
                 'JSON Value: 7.9 Type: Number is not of expected type: int64',
                 id='fraction-for-int64'),
    pytest.param(ADD_ONE, {'signature_name': fm.ADD_ONE_SIGNATURE, 'inputs': {'n': [7.0]}},
                 'JSON Value: 7.0 Type: Number is not of expected type: int64',
                 id='float-for-int64'),
    pytest.param(PREDICT, {'inputs': {'x': [[True]]}},
                 'JSON Value: true Type: True is not of expected type: float',
                 id='bool-for-float'),
    pytest.param(PREDICT, {'inputs': {'x': [['1.5']]}},
                 'JSON Value: "1.5" Type: String is not of expected type: float',
                 id='string-for-float'),
    pytest.param(PREDICT, {'instances': [[True]]},
                 "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
                 'JSON Value: true Type: True is not of expected type: float',
                 id='bool-for-float-in-a-row'),
])
def test_a_value_of_the_wrong_json_type_is_400_not_converted(rest_base, path, body, message):
  assert _error(rest_base, 'POST', path, body) == (400, message)


def test_an_int64_input_takes_json_integers(rest_base):
  status, _, raw = _request(rest_base, 'POST', ADD_ONE, {'signature_name': fm.ADD_ONE_SIGNATURE,
                                                          'inputs': {'n': [7, -2**63]}})
  assert status == 200, raw
  assert json.loads(raw) == {'outputs': [8, -2**63 + 1]}


# --- The request's structure --------------------------------------------------------------------


def test_empty_instances_are_400(rest_base):
  assert _error(rest_base, 'POST', PREDICT, {'instances': []}) == (
      400, f"JSON Value: {_pretty({'instances': []})} No values in 'instances' array")


def test_keys_of_an_inputs_object_that_are_not_inputs_are_ignored(rest_base):
  status, _, raw = _request(rest_base, 'POST', PREDICT,
                            {'inputs': {'x': [[2.0]], 'not_an_input': 'anything'}})
  assert status == 200, raw
  assert json.loads(raw)['outputs']['y'] == [[fm.half_plus_two_y(2, 2.0)]]


@pytest.mark.parametrize('body, message', [
    pytest.param({'instances': [{'not_an_input': [1.0]}]},
                 "Failed to process element: 0 key: not_an_input of 'instances' list. Error: "
                 'INVALID_ARGUMENT: JSON object: does not have named input: not_an_input',
                 id='instances'),
    pytest.param({'inputs': {'not_an_input': [[1.0]]}},
                 "Missing named input: x in 'inputs' object.", id='inputs'),
])
def test_a_wrong_input_name_says_the_input_is_missing(rest_base, body, message):
  assert _error(rest_base, 'POST', PREDICT, body) == (400, message)


# --- Answers (MakeJsonFromTensors) --------------------------------------------------------------


def test_only_string_outputs_named_bytes_are_base64_the_rest_go_as_they_are(rest_base):
  texts = ['plain', 'h\u00e9']
  instances = [{'b64': base64.b64encode(t.encode()).decode()} for t in texts]
  status, _, raw = _request(rest_base, 'POST', ADD_ONE, {'instances': instances})
  assert status == 200, raw
  assert [p['echo_bytes'] for p in json.loads(raw)['predictions']] == [
      {'b64': base64.b64encode(t.encode()).decode()} for t in texts]
  status, _, raw = _request(rest_base, 'POST', ADD_ONE,
                            {'signature_name': fm.ECHO_SIGNATURE, 'instances': instances})
  assert status == 200, raw
  assert json.loads(raw) == {'predictions': texts}


# --- Routes (ProcessRequest) --------------------------------------------------------------------


@pytest.mark.parametrize('method, path', [
    ('GET', '/v1/models/half_plus_two/versions/one'),
    ('GET', '/v1/models/half_plus_two/metadata/extra'),
    ('POST', '/v1/models/half_plus_two:explain'),
    ('POST', '/v1/models/half_plus_two/metadata'),
    ('PUT', '/v1/models/half_plus_two:predict'),
])
def test_a_v1_path_no_route_takes_is_400_malformed_request(rest_base, method, path):
  body = b'{}' if method != 'GET' else None
  assert _error(rest_base, method, path, body) == (400, f'Malformed request: {method} {path}')


def test_a_path_outside_v1_is_404_from_the_http_server(rest_base):
  status, content_type, _ = _request(rest_base, 'GET', '/v2/models/half_plus_two')
  assert status == 404 and content_type.startswith('text/html')


# --- Status and metadata print every field, defaults too (ToJsonString) -------------------------


def test_status_prints_default_fields(rest_base):
  status, _, raw = _request(rest_base, 'GET', f'/v1/models/{fm.HALF_PLUS_TWO}/versions/1')
  assert status == 200, raw
  assert json.loads(raw) == {'model_version_status': [{
      'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]}


def test_metadata_prints_default_fields(rest_base):
  status, _, raw = _request(rest_base, 'GET',
                            f'/v1/models/{fm.HALF_PLUS_TWO}/versions/1/metadata')
  assert status == 200, raw
  body = json.loads(raw)
  assert body['model_spec'] == {'name': fm.HALF_PLUS_TWO, 'signature_name': '', 'version': '1'}
  x = body['metadata']['signature_def']['signature_def'][fm.PREDICT_SIGNATURE]['inputs']['x']
  assert x['tensor_shape'] == {'dim': [{'size': '-1', 'name': ''}, {'size': '1', 'name': ''}],
                               'unknown_rank': False}
