"""Stopping the REST endpoint: in-flight requests finish, idle keep-alive clients do not block."""

import http.client
import json
import threading
import time

import pytest

from serving import config as config_lib
from serving import server as server_lib
from tests.serving import fixture_models

SLEEP_SECONDS = 1.0


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
      file_system_poll_wait_seconds=0)).start()
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
