"""The REST endpoint's connections: how bodies arrive, keep-alive, and stopping.

Stopping lets in-flight requests finish and does not wait on idle keep-alive clients. A body is
read whole, by Content-Length or chunked, whatever the route, so a connection never reads the
rest of one request as the next; one it cannot read gets a clear error and is closed.
"""

import http.client
import json
import logging
import threading
import time

import pytest

from ganpipe.serving import config as config_lib
from ganpipe.serving import rest
from ganpipe.serving import rest_transport
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models

SLEEP_SECONDS = 1.0
MAX_BODY = 4096
PREDICT = '/v1/models/half_plus_two:predict'


@pytest.fixture(name='rest_server')
def _rest_server(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  fixture_models.build_sleepy(str(tmp_path / 'sleepy' / '1'), SLEEP_SECONDS)
  path = tmp_path / 'models.config'
  path.write_text('model_config_list { ' + ' '.join(
      f'config {{ name: "{name}" base_path: "{tmp_path / name}" model_platform: "tensorflow" }}'
      for name in ('half_plus_two', 'sleepy')) + ' }\n')
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.read_model_server_config(str(path)), port=0, rest_api_port=0,
      file_system_poll_wait_seconds=0, max_message_size_bytes=MAX_BODY)).start()
  yield server
  server.stop(grace=1)  # A second stop, after the test's own, is harmless.


def _stop_in_background(server):
  stopped = threading.Event()
  threading.Thread(target=lambda: (server.stop(grace=5), stopped.set()), daemon=True).start()
  return stopped


def test_an_idle_keep_alive_connection_does_not_hold_up_shutdown(rest_server):
  connection = http.client.HTTPConnection('127.0.0.1', rest_server.rest_port, timeout=30)
  try:
    for _ in range(2):  # Kept alive: both requests go over the one connection.
      connection.request('GET', '/v1/models/half_plus_two')
      response = connection.getresponse()
      assert response.status == 200 and response.getheader('Connection') != 'close'
      response.read()
    started = time.monotonic()
    stopped = _stop_in_background(rest_server)
    assert stopped.wait(10), 'stop() waited on an idle keep-alive connection'
    assert time.monotonic() - started < 5
  finally:
    connection.close()


def test_a_request_in_flight_at_shutdown_is_answered_and_its_connection_closed(rest_server):
  connection = http.client.HTTPConnection('127.0.0.1', rest_server.rest_port, timeout=30)
  body = json.dumps({'instances': [[3.0]]})
  answer = {}

  def slow_request():
    connection.request('POST', '/v1/models/sleepy:predict', body=body,
                       headers={'Content-Type': 'application/json'})
    response = connection.getresponse()
    answer.update(status=response.status, connection=response.getheader('Connection'),
                  body=json.loads(response.read()))

  client = threading.Thread(target=slow_request)
  client.start()
  time.sleep(SLEEP_SECONDS / 3)  # The request is in the model now.
  stopped = _stop_in_background(rest_server)
  client.join(30)
  connection.close()
  assert answer == {'status': 200, 'connection': 'close', 'body': {'predictions': [[3.0]]}}
  assert stopped.wait(10)
  with pytest.raises(OSError):  # Refused: the port is closed.
    refused = http.client.HTTPConnection('127.0.0.1', rest_server.rest_port, timeout=5)
    refused.request('GET', '/v1/models/half_plus_two')
    refused.getresponse()


def _connect(server) -> http.client.HTTPConnection:
  return http.client.HTTPConnection('127.0.0.1', server.rest_port, timeout=30)


def _answer(connection):
  response = connection.getresponse()
  return response.status, response.getheader('Connection'), json.loads(response.read())


def _send(connection, path: str, headers, body: bytes) -> None:
  """A POST with exactly these headers: http.client adds no Content-Length of its own."""
  connection.putrequest('POST', path)
  for name, value in headers.items():
    connection.putheader(name, value)
  connection.endheaders(body)


def test_a_chunked_body_is_read_and_the_connection_stays_usable(rest_server):
  connection = _connect(rest_server)
  try:
    chunks = [b'{"instances": ', b'[[1.0], [2.0]]}']
    connection.request('POST', PREDICT, body=iter(chunks), encode_chunked=True,
                       headers={'Transfer-Encoding': 'chunked'})
    status, _, body = _answer(connection)
    assert status == 200
    assert [row['y'] for row in body['predictions']] == [
        [fixture_models.half_plus_two_y(1, x)] for x in (1.0, 2.0)]
    connection.request('GET', '/v1/models/half_plus_two')
    assert _answer(connection)[0] == 200
  finally:
    connection.close()


def test_a_body_sent_to_a_route_that_refuses_it_is_not_read_as_the_next_request(rest_server):
  connection = _connect(rest_server)
  try:
    connection.request('POST', '/v1/models/half_plus_two/metadata', body=b'{"examples": []}')
    status, _, body = _answer(connection)
    # http_rest_api_handler.cc ProcessRequest: no route takes a POST to /metadata.
    assert (status, body['error']) == (
        400, 'Malformed request: POST /v1/models/half_plus_two/metadata')
    connection.request('GET', '/v1/models/half_plus_two')
    status, _, body = _answer(connection)
    assert status == 200 and body['model_version_status'][0]['state'] == 'AVAILABLE'
  finally:
    connection.close()


def _chunked(*chunks: bytes) -> bytes:
  return b''.join(b'%x\r\n%s\r\n' % (len(chunk), chunk) for chunk in chunks) + b'0\r\n\r\n'


@pytest.mark.parametrize('headers, body, status, message', [
    ({}, b'{"instances": [[1.0]]}', 400, 'POST needs a Content-Length header, or a chunked body'),
    ({'Content-Length': 'abc'}, b'', 400, "Content-Length 'abc' is not a number of bytes"),
    ({'Content-Length': '-5'}, b'', 400, "Content-Length '-5' is not a number of bytes"),
    ({'Transfer-Encoding': 'gzip'}, b'x', 501, "Transfer-Encoding 'gzip' is not supported"),
    ({'Content-Length': str(MAX_BODY + 1)}, b'', 413,
     f'request body of {MAX_BODY + 1} bytes exceeds the limit of {MAX_BODY} bytes'),
    ({'Transfer-Encoding': 'chunked'}, _chunked(b' ' * 3000, b' ' * 3000), 413,
     f'request body of at least 6000 bytes exceeds the limit of {MAX_BODY} bytes'),
    ({'Transfer-Encoding': 'chunked'}, b'zz\r\n', 400, 'malformed chunked body'),
], ids=['no-length', 'length-not-a-number', 'negative-length', 'unknown-encoding', 'too-long',
        'chunked-too-long', 'bad-chunk-size'])
def test_a_body_that_cannot_be_read_is_a_clear_error_and_closes_the_connection(
    rest_server, headers, body, status, message):
  connection = _connect(rest_server)
  try:
    _send(connection, PREDICT, {'Content-Type': 'application/json', **headers}, body)
    got_status, got_connection, got_body = _answer(connection)
    assert (got_status, got_connection) == (status, 'close')
    assert message in got_body['error']
  finally:
    connection.close()
  # The server serves on.
  connection = _connect(rest_server)
  try:
    connection.request('POST', PREDICT, body=b'{"instances": [[4.0]]}')
    status, _, body = _answer(connection)
    assert (status, body['predictions'][0]['y']) == (200, [fixture_models.half_plus_two_y(1, 4.0)])
  finally:
    connection.close()


def test_a_client_hanging_up_is_not_reported_as_a_server_error(caplog, capsys):
  """socketserver's default prints a traceback for every such connection."""
  httpd = rest_transport.HTTPServer(('127.0.0.1', 0), rest._Handler)  # pylint: disable=protected-access
  try:
    with caplog.at_level(logging.DEBUG, logger='ganpipe.serving.rest'):
      for error in (BrokenPipeError(32, 'Broken pipe'), ConnectionResetError(104, 'reset'),
                    ValueError('a bug')):
        try:
          raise error
        except Exception:  # pylint: disable=broad-except
          httpd.handle_error(None, ('127.0.0.1', 5))
  finally:
    httpd.server_close()
  # What socketserver's own handle_error prints, for every one of them.
  assert 'Exception occurred during processing of request' not in capsys.readouterr().err
  levels = [(record.levelname, record.getMessage().split(':')[0]) for record in caplog.records]
  assert levels == [('DEBUG', "REST client ('127.0.0.1', 5) hung up"),
                    ('DEBUG', "REST client ('127.0.0.1', 5) hung up"),
                    ('ERROR', "REST connection from ('127.0.0.1', 5) failed")]


@pytest.mark.parametrize('path, body, message', [
    (PREDICT, b'{"instances": ' + b'[' * 1500 + b']' * 1500 + b'}',
     'JSON Parse error: nested too deeply'),
    # util/json_tensor.cc: the document, printed as rapidjson's PrettyWriter prints it.
    (PREDICT, b'{"signature_name": 5, "instances": [[1.0]]}',
     'JSON Value: ' + json.dumps({'signature_name': 5, 'instances': [[1.0]]}, indent=4) +
     " not formatted correctly. 'signature_name' key must be a string value."),
    ('/v1/models/half_plus_two:classify', b'{"signature_name": [], "examples": [{"x": 1.0}]}',
     'JSON Value: ' + json.dumps({'signature_name': [], 'examples': [{'x': 1.0}]}, indent=4) +
     " not formatted correctly. 'signature_name' key must be a string value."),
], ids=['nested-too-deeply', 'predict-signature-name-number', 'classify-signature-name-list'])
def test_a_body_python_cannot_take_as_given_is_a_client_error_not_a_500(rest_server, path, body,
                                                                       message):
  connection = _connect(rest_server)
  try:
    connection.request('POST', path, body=body)
    status, _, answer = _answer(connection)
    assert (status, answer['error']) == (400, message)
  finally:
    connection.close()


def test_connections_past_the_limit_are_refused_without_a_thread_each(rest_server, monkeypatch):
  monkeypatch.setattr(rest_server._rest._httpd, 'max_connections', 2)  # pylint: disable=protected-access
  held = [_connect(rest_server) for _ in range(2)]
  try:
    for connection in held:  # Two clients hold their connections open, idle.
      connection.request('GET', '/v1/models/half_plus_two')
      assert _answer(connection)[0] == 200
    refused = _connect(rest_server)
    refused.request('GET', '/v1/models/half_plus_two')
    status, headers, body = _answer(refused)
    assert status == 503 and 'too many open REST connections' in body['error']
    refused.close()
    held.pop().close()
    deadline = time.monotonic() + 10
    while True:  # The server sees the close when its thread's read ends.
      connection = _connect(rest_server)
      connection.request('GET', '/v1/models/half_plus_two')
      status = _answer(connection)[0]
      connection.close()
      if status == 200 or time.monotonic() > deadline:
        break
      time.sleep(0.05)
    assert status == 200
  finally:
    for connection in held:
      connection.close()
