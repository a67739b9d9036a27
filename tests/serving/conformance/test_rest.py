"""Conformance over REST: TF Serving's /v1/models API, and the same answers as gRPC."""

import base64
import json
import urllib.error
import urllib.request
from typing import Any, Tuple

import numpy as np
import pytest
import tensorflow as tf

from tests.serving import fixture_models as fm
from tests.serving.conformance.protocol import (
    CLASSIFY_METHOD, LATEST, PREDICT_METHOD, predict_request, x)


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
  response = prediction_stub.Predict(predict_request({'x': x([[v] for v in xs])},
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
  # TF Serving's key is "result", singular (api_rest.md; json_tensor.h).
  assert body == {'results': [[['', fm.half_plus_two_y(LATEST, 1.0)]],
                             [['', fm.half_plus_two_y(LATEST, 4.0)]]]}


def test_rest_regress(rest_base):
  status, body = _http('POST', f'{rest_base}/v1/models/{fm.HALF_PLUS_TWO}:regress',
                       {'signature_name': fm.REGRESS_SIGNATURE,
                        'examples': [{'x': 1.0}, {'x': 4.0}]})
  assert status == 200, body
  assert body == {'results': [fm.half_plus_two_y(LATEST, 1.0), fm.half_plus_two_y(LATEST, 4.0)]}


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
