"""Starting the server: over TLS, and what a user sees when it cannot start."""

import socket

import numpy as np
import pytest

from serving import client as client_lib
from serving import config as config_lib
from serving import serve_command
from serving import server as server_lib
from tests.serving import fixture_models


def test_a_port_in_use_is_a_clear_error_and_exit_status_one(tmp_path, capsys):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  with socket.socket() as taken:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    port = taken.getsockname()[1]
    status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                                 str(tmp_path / 'half_plus_two'), '--port', str(port),
                                 '--file_system_poll_wait_seconds', '0'])
  assert status == 1
  error = capsys.readouterr().err
  assert f'cannot start the server: cannot bind gRPC to 127.0.0.1:{port}' in error
  assert 'Traceback' not in error


def test_the_server_answers_over_tls_and_refuses_plaintext(tmp_path, self_signed_certificate):
  key, cert = self_signed_certificate
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config('half_plus_two',
                                                  str(tmp_path / 'half_plus_two')),
      host='localhost', port=0, file_system_poll_wait_seconds=0, ssl_cert_file=str(cert),
      ssl_key_file=str(key))).start()
  try:
    target = f'localhost:{server.port}'
    with client_lib.ServingClient(target,
                                  credentials=client_lib.ssl_credentials(str(cert))) as client:
      outputs = client.predict('half_plus_two', {'x': np.array([[4.0]], np.float32)})
      assert outputs['y'].tolist() == [[fixture_models.half_plus_two_y(1, 4.0)]]
    with client_lib.ServingClient(target, retries=0) as client, pytest.raises(
        client_lib.ServingError, match='UNAVAILABLE'):
      client.model_status('half_plus_two')
  finally:
    server.stop(grace=1)


@pytest.mark.parametrize('broken', ['certificate', 'key'])
def test_a_bad_certificate_or_key_is_named_not_mistaken_for_a_port_in_use(
    tmp_path, capsys, self_signed_certificate, broken):
  key, cert = self_signed_certificate
  (key if broken == 'key' else cert).write_text('not PEM\n')
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                               str(tmp_path / 'half_plus_two'), '--port', '0',
                               '--file_system_poll_wait_seconds', '0',
                               '--ssl_cert_file', str(cert), '--ssl_key_file', str(key)])
  assert status == 1
  error = capsys.readouterr().err
  assert (f'cannot start the server: --ssl_cert_file {cert} and --ssl_key_file {key} are not a '
          'PEM certificate and its private key') in error
  assert 'port in use' not in error and 'Traceback' not in error
