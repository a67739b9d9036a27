"""Deadlines: a request nobody waits for any more never reaches the model.

A gRPC call's deadline, or a REST request's --rest_api_timeout_in_ms, bounds how long it may wait
for a thread and for the model, as in TF Serving. The probe model leaves a file for each request it
runs, so each test can tell which requests the model saw.
"""

import http.client
import json
import os
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ganpipe.serving import batching
from ganpipe.serving import config as config_lib
from ganpipe.serving import grpc_services
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models
from tests.serving.flags import serve_options

MODEL_SECONDS = 1.0  # How long the probe model takes per call.
SHORT_TIMEOUT = 0.3  # A deadline that passes while a request waits behind one call.


@pytest.fixture(name='probe')
def _probe(tmp_path):
  markers = tmp_path / 'markers'
  markers.mkdir()
  fixture_models.build_warmup_probe(str(tmp_path / 'probe' / '1'), str(markers), [],
                                    MODEL_SECONDS)
  config = config_lib.single_model_config('probe', str(tmp_path / 'probe'))
  servers = []

  def start(**options):
    server = server_lib.ModelServer(config_lib.ServerOptions(
        model_config=config, port=0, file_system_poll_wait_seconds=0, **options)).start()
    servers.append(server)
    return server

  start.ran = lambda x: os.path.exists(fixture_models.marker_path(str(markers), x))
  yield start
  for server in servers:
    server.stop(grace=5)


def _predict(port: int, x: float, timeout=None):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'probe'
  request.inputs['x'].CopyFrom(tf.make_tensor_proto([[x]], dtype=tf.float32))
  with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
      return stub.Predict(request, timeout=timeout).outputs['y'].float_val[0]
    except grpc.RpcError as e:
      return e.code()


def _in_background(function, *args):
  result = {}
  thread = threading.Thread(target=lambda: result.update(value=function(*args)))
  thread.start()
  return thread, result


BATCHING = config_lib.BatchingParameters(max_batch_size=4, batch_timeout_micros=1000,
                                         num_batch_threads=1)


@pytest.mark.parametrize('options', [
    {'grpc_max_threads': 1},
    {'enable_batching': True, 'batching': BATCHING},
], ids=['one-model-thread', 'batching-one-batch-thread'])
def test_a_grpc_call_whose_deadline_passes_while_it_waits_never_runs(probe, options):
  server = probe(**options)
  first, first_result = _in_background(_predict, server.port, 1.0)
  time.sleep(MODEL_SECONDS / 4)  # The first call holds the only model thread now.
  assert _predict(server.port, 2.0, timeout=SHORT_TIMEOUT) == grpc.StatusCode.DEADLINE_EXCEEDED
  # A third call, queued behind the expired one: once it is answered, the expired one has been
  # dropped or run.
  assert _predict(server.port, 3.0) == 3.0
  first.join(30)
  assert first_result['value'] == 1.0
  assert probe.ran(1) and probe.ran(3)
  assert not probe.ran(2), 'the model ran a request whose caller had gone'


def _rest(port: int, method: str, path: str, body=None):
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
  try:
    connection.request(method, path, body=None if body is None else json.dumps(body),
                       headers={'Content-Type': 'application/json'})
    response = connection.getresponse()
    return response.status, json.loads(response.read())
  finally:
    connection.close()


def _rest_predict(port: int, x: float):
  return _rest(port, 'POST', '/v1/models/probe:predict', {'instances': [[x]]})


def test_a_rest_request_queued_past_rest_api_timeout_in_ms_gets_429_and_never_runs(probe):
  server = probe(rest_api_port=0, rest_api_timeout_in_ms=int(SHORT_TIMEOUT * 1000),
                 enable_batching=True, batching=BATCHING)
  first, first_result = _in_background(_rest_predict, server.rest_port, 1.0)
  time.sleep(MODEL_SECONDS / 4)
  status, body = _rest_predict(server.rest_port, 2.0)
  first.join(30)
  # As TF Serving: RESOURCE_EXHAUSTED, which its REST API answers 429 (Too Many Requests).
  assert (status, body) == (429, {'error': batching.QUEUE_TIMEOUT_MESSAGE})
  # A model call already running is not interrupted: the first request, over its timeout by the
  # time it finished, still gets its answer.
  assert first_result['value'] == (200, {'predictions': [[1.0]]})
  assert not probe.ran(2)


def test_rest_api_num_threads_bounds_the_requests_processed_at_once(probe):
  server = probe(rest_api_port=0, rest_api_num_threads=1,
                 rest_api_timeout_in_ms=int(SHORT_TIMEOUT * 1000))
  first, first_result = _in_background(_rest_predict, server.rest_port, 1.0)
  time.sleep(MODEL_SECONDS / 4)
  # The one REST thread is busy: a status request waits for it, then times out.
  status, body = _rest(server.rest_port, 'GET', '/v1/models/probe')
  assert status == 504
  assert 'no REST thread became free' in body['error'] and '300 ms' in body['error']
  first.join(30)
  assert first_result['value'] == (200, {'predictions': [[1.0]]})
  # Free again: the same request is answered.
  status, body = _rest(server.rest_port, 'GET', '/v1/models/probe')
  assert status == 200 and body['model_version_status'][0]['state'] == 'AVAILABLE'


def test_rest_requests_beyond_rest_api_num_threads_wait_their_turn(probe):
  server = probe(rest_api_port=0, rest_api_num_threads=1, rest_api_timeout_in_ms=0)
  started = time.monotonic()
  calls = [_in_background(_rest_predict, server.rest_port, float(x)) for x in (1, 2)]
  for thread, _ in calls:
    thread.join(30)
  # With no timeout both are answered, one after the other: never two model calls at once.
  assert [result['value'] for _, result in calls] == [(200, {'predictions': [[1.0]]}),
                                                     (200, {'predictions': [[2.0]]})]
  assert time.monotonic() - started >= 2 * MODEL_SECONDS


class _Context:
  def __init__(self, remaining):
    self._remaining = remaining

  def time_remaining(self):
    return self._remaining


@pytest.mark.parametrize('enforce, remaining, has_deadline', [
    (True, 2.5, True), (True, None, False), (False, 2.5, False)])
def test_enforce_session_run_timeout_decides_whether_the_call_deadline_counts(
    enforce, remaining, has_deadline):
  servicer = grpc_services.PredictionServicer(None, None, enforce_deadlines=enforce)
  before = time.monotonic()
  deadline = servicer._deadline(_Context(remaining))  # pylint: disable=protected-access
  if has_deadline:
    assert before + remaining <= deadline <= time.monotonic() + remaining
  else:
    assert deadline is None


def test_the_deadline_flags_take_tf_servings_names_and_defaults():
  default = serve_options()
  assert (default.rest_api_timeout_in_ms, default.rest_api_num_threads,
          default.enforce_session_run_timeout) == (30000, None, True)
  given = serve_options('--rest_api_timeout_in_ms=1500', '--rest_api_num_threads=3',
                   '--enforce_session_run_timeout=false')
  assert (given.rest_api_timeout_in_ms, given.rest_api_num_threads,
          given.enforce_session_run_timeout) == (1500, 3, False)
  with pytest.raises(config_lib.ConfigError, match='rest_api_num_threads must be at least 1'):
    serve_options('--rest_api_num_threads=0')
