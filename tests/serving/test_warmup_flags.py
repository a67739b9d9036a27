"""Warmup replay counts, and the TF Serving flags that control warmup and batching."""

import os

import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.config import model_server_config_pb2

from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import handlers
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models
from tests.serving.flags import serve_options


class _CountingSignature:
  """Stands in for a loaded signature: checks nothing, counts calls per first input value."""
  inputs = {'x': None}

  def __init__(self):
    self.calls = []

  def check_inputs(self, inputs) -> None:
    assert set(inputs) == {'x'}

  def __call__(self, inputs):
    self.calls.append(float(inputs['x'][0][0]))
    return {'y': inputs['x']}


class _Version:
  def __init__(self, path: str):
    self.warmup_file = os.path.join(path, fixture_models.WARMUP_FILE)
    self.served = _CountingSignature()

  def signature(self, name):
    assert name == fixture_models.PREDICT_SIGNATURE
    return self.served


@pytest.fixture(name='version')
def _version(tmp_path):
  requests = []
  for value in (1.0, 2.0):
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = fixture_models.PREDICT_SIGNATURE
    request.inputs['x'].CopyFrom(tf.make_tensor_proto([[value]], dtype=tf.float32))
    requests.append(request)
  fixture_models.write_warmup_requests(str(tmp_path), requests)
  return _Version(str(tmp_path))


@pytest.mark.parametrize('iterations, calls', [(1, [1.0, 2.0]), (3, [1.0] * 3 + [2.0] * 3),
                                               (0, [])])
def test_each_warmup_record_is_replayed_the_configured_number_of_times(version, iterations,
                                                                       calls):
  service = handlers.ModelService(model_server_config_pb2.ModelServerConfig(), 0,
                                  warmup_iterations=iterations)
  assert service.warmup(version) == (2 if iterations else 0)
  assert version.served.calls == calls


@pytest.mark.parametrize('enabled', [True, False])
def test_the_server_replays_warmup_only_when_enabled(tmp_path, enabled):
  markers = tmp_path / 'markers'
  markers.mkdir()
  fixture_models.build_warmup_probe(str(tmp_path / 'probe' / '1'), str(markers), [7, 8],
                                    seconds=0)
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config('probe', str(tmp_path / 'probe')), port=0,
      file_system_poll_wait_seconds=0, enable_model_warmup=enabled)).start()
  try:
    with client_lib.ServingClient(f'127.0.0.1:{server.port}', retries=0) as client:
      assert [s['state'] for s in client.model_status('probe')] == ['AVAILABLE']
  finally:
    server.stop(grace=1)
  expected = [os.path.basename(fixture_models.marker_path(str(markers), x)) for x in (7, 8)]
  assert sorted(os.listdir(markers)) == (expected if enabled else [])


def test_boolean_flags_take_tf_servings_forms(tmp_path):
  assert not serve_options().enable_batching
  assert serve_options('--enable_batching').enable_batching
  assert serve_options('--enable_batching=true').enable_batching
  assert not serve_options('--enable_batching=false').enable_batching
  assert serve_options().enable_model_warmup
  assert not serve_options('--enable_model_warmup=false').enable_model_warmup
  iterations = serve_options('--num_request_iterations_for_warmup=4')
  assert iterations.num_request_iterations_for_warmup == 4


def test_bad_warmup_and_batching_flag_values_are_usage_errors(tmp_path, capsys):
  with pytest.raises(SystemExit) as exited:
    serve_options('--enable_batching=yes please')
  assert exited.value.code == 2
  assert "expected true or false, got 'yes please'" in capsys.readouterr().err
  with pytest.raises(ValueError, match='num_request_iterations_for_warmup must be at least 1'):
    serve_options('--num_request_iterations_for_warmup=0')


def _batching_file(tmp_path, text):
  path = tmp_path / 'batching.config'
  path.write_text(text)
  return config_lib.read_batching_parameters(str(path))


def test_the_batching_parameters_file_is_tf_servings_text_proto(tmp_path):
  parameters = _batching_file(tmp_path, '''
      max_batch_size { value: 8 }
      batch_timeout_micros { value: 0 }  # run at once
      num_batch_threads { value: 2 }
      max_enqueued_batches { value: 10 }
      thread_pool_name { value: "classifier_batch_threads" }
      allowed_batch_sizes: 4
      allowed_batch_sizes: 8
      pad_variable_length_inputs: true
  ''')
  assert parameters == config_lib.BatchingParameters(
      max_batch_size=8, batch_timeout_micros=0, num_batch_threads=2, max_enqueued_batches=10,
      thread_pool_name='classifier_batch_threads', allowed_batch_sizes=(4, 8))


@pytest.mark.parametrize('text, match', [
    # A plain value where TF Serving wants a wrapper: it used to be skipped, and 32 used.
    pytest.param('max_batch_size: 64', 'max_batch_size', id='not-a-wrapper'),
    pytest.param('max_batch_sizes { value: 64 }', 'max_batch_sizes', id='typo'),
    pytest.param('max_batch_size { value: "64" }', 'max_batch_size|value', id='a-string'),
    pytest.param('max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2',
                 'monotonically increasing', id='sizes-not-increasing'),
    pytest.param('max_batch_size { value: 8 } allowed_batch_sizes: 4',
                 'Last entry in allowed_batch_sizes must match max_batch_size', id='last-size'),
    pytest.param('num_batch_threads { value: 0 }', 'num_batch_threads must be positive',
                 id='no-threads'),
])
def test_a_batching_parameters_file_tf_serving_would_refuse_is_an_error(tmp_path, text, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    _batching_file(tmp_path, text)
