"""The serving client library, against an in-process fake TF Serving gRPC server."""

import socket
import time

import grpc
import numpy as np
import pytest

from ganpipe.serving import client as client_lib
from tests.serving import fake_tf_serving
from tests.serving.fake_tf_serving import FakeServer


GENERATE_TWO = {'num_images': np.int32(2), 'seed': np.int64(1)}


def _client(fake: FakeServer, **kwargs) -> client_lib.ServingClient:
  kwargs.setdefault('backoff', 0.01)
  return client_lib.ServingClient(fake.target, **kwargs)



def test_predict_sends_version_label_and_output_filter(fake):
  with _client(fake) as client:
    outputs = client.predict('classifier', {'images': [b'ab', b'a']}, version_label='stable',
                             output_filter=['class_ids'])
  assert list(outputs) == ['class_ids']
  np.testing.assert_array_equal(outputs['class_ids'], [2, 1])
  [request] = fake.requests('Predict')
  assert request.model_spec.version_label == 'stable'
  assert list(request.output_filter) == ['class_ids']


def test_predict_sends_a_specific_version(fake):
  with _client(fake) as client:
    client.predict('classifier', {'images': np.array([b'x'], dtype=object)}, version=1)
  assert fake.requests('Predict')[0].model_spec.version.value == 1


@pytest.mark.parametrize('call, message', [
    (lambda c: c.predict('classifier', {'images': [b'a']}, version=1, version_label='stable'),
     'not both'),
    (lambda c: c.predict('classifier', {'images': {'a': 1}}), "input 'images' cannot be made"),
])
def test_bad_arguments_fail_before_sending(fake, call, message):
  with _client(fake) as client, pytest.raises(ValueError, match=message):
    call(client)
  assert not fake.calls


def test_model_status_lists_versions_newest_first_with_errors(fake):
  with _client(fake) as client:
    assert client.model_status('classifier') == [
        {'version': 2, 'state': 'AVAILABLE', 'error': ''},
        {'version': 1, 'state': 'END', 'error': ''}]
    assert client.model_status('broken') == [
        {'version': 3, 'state': 'END',
         'error': 'NOT_FOUND: Could not find SavedModel .pb or .pbtxt'}]


def test_model_metadata_unpacks_the_signature_def_map(fake):
  with _client(fake) as client:
    signatures = client.model_metadata('generator', version=1)
  assert signatures == {
      '__saved_model_init_op': {
          'method_name': '', 'inputs': {},
          'outputs': {'__saved_model_init_op': {'dtype': None, 'shape': None}}},
      'generate': {
          'method_name': 'tensorflow/serving/predict',
          'inputs': {'num_images': {'dtype': 'int32', 'shape': []},
                     'seed': {'dtype': 'int64', 'shape': []}},
          'outputs': {'images': {'dtype': 'float32', 'shape': [None, 4, 5, 1]},
                      'png_bytes': {'dtype': 'string', 'shape': [None]}}}}
  [request] = fake.requests('GetModelMetadata')
  assert list(request.metadata_field) == ['signature_def']
  assert request.model_spec.version.value == 1


def test_model_metadata_by_version_label(fake):
  with _client(fake) as client:
    client.model_metadata('generator', version_label='stable')
  [request] = fake.requests('GetModelMetadata')
  assert request.model_spec.version_label == 'stable'
  assert not request.model_spec.HasField('version')


def test_unavailable_is_retried_with_exponential_backoff(fake):
  fake.unavailable_times = 2
  started = time.monotonic()
  with _client(fake, retries=3, backoff=0.1) as client:
    assert client.model_status('generator')[0]['state'] == 'AVAILABLE'
  assert len(fake.calls) == 3
  assert time.monotonic() - started >= 0.1 + 0.2


def test_unavailable_gives_up_after_the_retries(fake):
  fake.unavailable_times = 100
  with _client(fake, retries=2) as client, pytest.raises(client_lib.ServingError) as raised:
    client.predict('classifier', {'images': [b'a']}, version=2)
  assert raised.value.code == grpc.StatusCode.UNAVAILABLE
  assert str(raised.value) == (
      f"Predict for model 'classifier' version 2, signature 'serving_default' at {fake.target} "
      'failed: UNAVAILABLE: fake server: still warming up (gave up after 3 attempts). '
      f'Is the server running at {fake.target}?')
  assert len(fake.calls) == 3


def test_no_server_suggests_checking_it_runs():
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    target = f'127.0.0.1:{sock.getsockname()[1]}'
  client = client_lib.ServingClient(target, retries=1, backoff=0.01)
  with client, pytest.raises(client_lib.ServingError,
                             match=f'UNAVAILABLE.*Is the server running at {target}') as raised:
    client.model_status('classifier')
  assert raised.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize('code, details', [
    (grpc.StatusCode.NOT_FOUND, 'Servable not found for request: Specific(classifier, 9)'),
    (grpc.StatusCode.INVALID_ARGUMENT, 'input size does not match signature: 2!=1'),
    (grpc.StatusCode.INTERNAL, 'out of memory'),
])
def test_other_errors_are_not_retried_and_say_what_the_server_said(fake, code, details):
  fake.error = (code, details)
  with _client(fake, retries=3) as client, pytest.raises(client_lib.ServingError) as raised:
    client.predict('classifier', {'images': [b'a']}, version=9)
  assert raised.value.code == code
  assert str(raised.value) == (
      f"Predict for model 'classifier' version 9, signature 'serving_default' at {fake.target} "
      f'failed: {code.name}: {details}')
  assert len(fake.calls) == 1


def test_an_unknown_model_surfaces_not_found(fake):
  with _client(fake) as client, pytest.raises(
      client_lib.ServingError, match=r"GetModelMetadata for model 'nope' at .* failed: NOT_FOUND: "
      r'Servable not found for request: Latest\(nope\)$') as raised:
    client.model_metadata('nope')
  assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_a_slow_server_exceeds_the_deadline_without_retries(fake):
  with _client(fake, retries=3) as client:
    # Connected first, with the default timeout: on a loaded machine, connecting alone can take a
    # short deadline, and the call then never reaches the server.
    client.predict('generator', GENERATE_TWO, signature='generate')
    fake.calls.clear()
    client.timeout = 0.2
    fake.sleep_seconds = 1.0
    started = time.monotonic()
    with pytest.raises(client_lib.ServingError,
                       match=r'DEADLINE_EXCEEDED: .*no answer within the 0\.2 s timeout') as raised:
      client.predict('generator', GENERATE_TWO, signature='generate')
    elapsed = time.monotonic() - started
  assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
  assert len(fake.calls) == 1  # Not retried.
  assert elapsed < 0.9  # The deadline, not the server's answer, ended the call.


def test_closing_the_client_closes_the_channel(fake):
  with _client(fake) as client:
    client.model_status('classifier')
  with pytest.raises(ValueError, match='closed channel'):
    client.model_status('classifier')


@pytest.mark.parametrize('kwargs, message', [
    ({'timeout': 0}, 'timeout must be positive'),
    ({'retries': -1}, 'must not be negative'),
])
def test_bad_client_settings(kwargs, message):
  with pytest.raises(ValueError, match=message):
    client_lib.ServingClient('localhost:1', **kwargs)


def test_tls_with_a_self_signed_certificate(self_signed_certificate):
  key, cert = self_signed_certificate
  fake = FakeServer()
  server = fake_tf_serving.start(
      fake, grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]), host='localhost')
  try:
    with client_lib.ServingClient(fake.target,
                                  credentials=client_lib.ssl_credentials(str(cert))) as client:
      assert client.model_status('generator')[0]['state'] == 'AVAILABLE'
    # An insecure client cannot talk to it.
    with client_lib.ServingClient(fake.target, retries=0) as client, pytest.raises(
        client_lib.ServingError, match='UNAVAILABLE'):
      client.model_status('generator')
  finally:
    server.stop(grace=None)


def test_ssl_credentials_names_a_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='no-ca.pem'):
    client_lib.ssl_credentials(str(tmp_path / 'no-ca.pem'))


# The CLI commands.
