"""Starting the server: over TLS, and what a user sees when it cannot start."""

import argparse
import logging
import socket
import threading

import numpy as np
import pytest

from ganpipe.serving import client as client_lib
from ganpipe.app import client_commands
from ganpipe.serving import config as config_lib
from ganpipe.serving import serve_command
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models


_OUR_THREADS = ('version-poller', 'grpc-loop', 'grpc_', 'config-file-poller', 'batch-', 'rest')


def _our_threads():
  return {thread for thread in threading.enumerate() if thread.name.startswith(_OUR_THREADS)}


def test_a_port_in_use_is_a_clear_error_and_exit_status_one(tmp_path, capsys):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  before = _our_threads()
  with socket.socket() as taken:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    port = taken.getsockname()[1]
    status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                                 str(tmp_path / 'half_plus_two'), '--port', str(port),
                                 '--file_system_poll_wait_seconds', '1',
                                 '--enable_batching'])
  assert status == 1
  # Nothing it started is left running: model poller, batch threads, event loop, pools.
  assert _our_threads() - before == set()
  error = capsys.readouterr().err
  assert f'cannot start the server: cannot bind gRPC to 127.0.0.1:{port}' in error
  assert 'Traceback' not in error


def test_a_server_that_cannot_start_leaves_nothing_running(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  before = _our_threads()
  with socket.socket() as taken:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    server = server_lib.ModelServer(config_lib.ServerOptions(
        model_config=config_lib.single_model_config('half_plus_two',
                                                    str(tmp_path / 'half_plus_two')),
        port=taken.getsockname()[1], file_system_poll_wait_seconds=1, enable_batching=True))
    with pytest.raises(OSError, match='cannot bind gRPC'):
      server.start()
  assert _our_threads() - before == set()


def test_a_rest_port_in_use_is_named_and_nothing_is_left_serving(tmp_path, capsys):
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  before = _our_threads()
  with socket.socket() as taken, socket.socket() as grpc_port:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    grpc_port.bind(('127.0.0.1', 0))
    free = grpc_port.getsockname()[1]
    grpc_port.close()
    rest_port = taken.getsockname()[1]
    status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                                 str(tmp_path / 'half_plus_two'), '--port', str(free),
                                 '--rest_api_port', str(rest_port),
                                 '--file_system_poll_wait_seconds', '1',
                                 '--enable_batching'])
  assert status == 1
  assert _our_threads() - before == set()
  error = capsys.readouterr().err
  assert (f'cannot start the server: cannot bind REST to 127.0.0.1:{rest_port}: Address already '
          'in use') in error
  with socket.socket() as again:  # The gRPC port it had opened is closed again.
    again.bind(('127.0.0.1', free))


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


def _cli(argv) -> int:
  """`ganpipe ARGV` for the client commands, without main()'s process-wide logging set-up."""
  parser = argparse.ArgumentParser(prog='ganpipe')
  client_commands.add_parsers(parser.add_subparsers(dest='command', required=True))
  args = parser.parse_args(argv)
  return args.handler(args)


def _ssl_config_text(key, cert, ca=None, client_verify=False) -> str:
  """An SSLConfig text proto, as tensorflow_model_server's --ssl_config_file takes it."""
  def quoted(path):
    return '"' + path.read_text().replace('\n', '\\n') + '"'
  text = f'server_key: {quoted(key)}\nserver_cert: {quoted(cert)}\n'
  if ca is not None:
    text += f'custom_ca: {quoted(ca)}\n'
  return text + f'client_verify: {str(client_verify).lower()}\n'


def _tls_server(tmp_path, **tls) -> server_lib.ModelServer:
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  return server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config('half_plus_two',
                                                  str(tmp_path / 'half_plus_two')),
      host='localhost', port=0, file_system_poll_wait_seconds=0, **tls)).start()


def _predicts(target: str, credentials) -> bool:
  with client_lib.ServingClient(target, credentials=credentials, retries=0) as client:
    try:
      outputs = client.predict('half_plus_two', {'x': np.array([[4.0]], np.float32)})
    except client_lib.ServingError as e:
      assert 'UNAVAILABLE' in str(e), e  # A refused handshake, not some other failure.
      return False
  assert outputs['y'].tolist() == [[fixture_models.half_plus_two_y(1, 4.0)]]
  return True


def test_ssl_config_file_serves_tls_as_tf_serving_takes_it(tmp_path, self_signed_certificate):
  key, cert = self_signed_certificate
  config = tmp_path / 'ssl.config'
  config.write_text(_ssl_config_text(key, cert))
  server = _tls_server(tmp_path, ssl_config_file=str(config))
  try:
    target = f'localhost:{server.port}'
    assert _predicts(target, client_lib.ssl_credentials(str(cert)))
    assert not _predicts(target, None)  # Plaintext is refused.
  finally:
    server.stop(grace=1)


def test_client_verify_requires_a_client_certificate_signed_by_custom_ca(
    tmp_path, capsys, self_signed_certificate, client_certificate):
  key, cert = self_signed_certificate
  ca, client_key, client_cert = client_certificate
  config = tmp_path / 'ssl.config'
  config.write_text(_ssl_config_text(key, cert, ca=ca, client_verify=True))
  server = _tls_server(tmp_path, ssl_config_file=str(config))
  try:
    target = f'localhost:{server.port}'
    assert _predicts(target, client_lib.ssl_credentials(
        str(cert), private_key_path=str(client_key), cert_chain_path=str(client_cert)))
    assert not _predicts(target, client_lib.ssl_credentials(str(cert)))  # No certificate.
    # A certificate custom_ca did not sign: the server's own, self-signed.
    assert not _predicts(target, client_lib.ssl_credentials(
        str(cert), private_key_path=str(key), cert_chain_path=str(cert)))
    # `ganpipe models` takes the client certificate as flags.
    command = ['models', 'half_plus_two', '--target', target, '--ca-cert', str(cert)]
    assert _cli(command + ['--client-cert', str(client_cert),
                           '--client-key', str(client_key)]) == 0
    assert 'half_plus_two' in capsys.readouterr().out
    assert _cli(command) == 1
    assert 'UNAVAILABLE' in capsys.readouterr().err
  finally:
    server.stop(grace=1)


@pytest.mark.parametrize('content, message', [
    ('server_key: "unterminated\n', 'is not an SSLConfig text proto'),
    ('server_cert: "x"\n', 'needs both server_key and server_cert'),
    ('KEY CERT client_verify: true\n', 'sets client_verify, which needs custom_ca'),
    ('server_key: "not PEM" server_cert: "not PEM"\n',
     'server_cert and server_key are not a PEM certificate and its private key'),
    ('KEY CERT custom_ca: "not PEM"\n', 'custom_ca is not a PEM certificate'),
], ids=['not-a-text-proto', 'no-key', 'verify-without-ca', 'bad-key-pair', 'bad-ca'])
def test_a_bad_ssl_config_file_is_named_and_the_server_does_not_start(
    tmp_path, capsys, self_signed_certificate, content, message):
  key, cert = self_signed_certificate
  pair = _ssl_config_text(key, cert).replace('client_verify: false\n', '')
  config = tmp_path / 'ssl.config'
  config.write_text(content.replace('KEY CERT ', pair))
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)
  status = serve_command.main(['--model_name', 'half_plus_two', '--model_base_path',
                               str(tmp_path / 'half_plus_two'), '--port', '0',
                               '--file_system_poll_wait_seconds', '0',
                               '--ssl_config_file', str(config)])
  assert status == 1
  error = capsys.readouterr().err
  assert f'cannot start the server: --ssl_config_file {config}' in error
  assert message in error and 'Traceback' not in error


def test_ssl_config_file_and_pem_files_are_one_or_the_other(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='not both'):
    config_lib.ServerOptions(model_config=config_lib.single_model_config('m', str(tmp_path)),
                             ssl_config_file='ssl.config', ssl_cert_file='c.pem',
                             ssl_key_file='k.pem')


def test_a_grpc_port_another_server_serves_on_is_refused(tmp_path):
  # gRPC's default SO_REUSEPORT would let both bind it and split the clients between them.
  fixture_models.build_half_plus_two(str(tmp_path / 'half_plus_two' / '1'), 1)

  def server(port):
    return server_lib.ModelServer(config_lib.ServerOptions(
        model_config=config_lib.single_model_config('half_plus_two',
                                                    str(tmp_path / 'half_plus_two')),
        port=port, file_system_poll_wait_seconds=0))
  first = server(0).start()
  second = server(first.port)
  try:
    with pytest.raises(OSError, match=f'cannot bind gRPC to 127.0.0.1:{first.port}'):
      second.start()
  finally:
    second.stop(grace=0)
    first.stop(grace=0)


def test_no_model_that_can_load_is_a_clear_error_at_start_up(tmp_path, capsys):
  status = serve_command.main(['--model_name', 'm', '--model_base_path', str(tmp_path / 'nowhere'),
                               '--port', '0'])
  assert status == 1
  assert capsys.readouterr().err.strip() == (
      f'ganpipe: error: cannot start the server: NOT_FOUND: no configured model can load: the '
      f'base path {tmp_path / "nowhere"} of model m does not exist')


def test_a_model_waiting_for_its_base_path_or_first_version_says_so_once(tmp_path, caplog):
  fixture_models.build_half_plus_two(str(tmp_path / 'served' / '1'), 1)
  (tmp_path / 'empty').mkdir()
  config = fixture_models.server_config([
      fixture_models.model_config('served', str(tmp_path / 'served')),
      fixture_models.model_config('later', str(tmp_path / 'later')),
      fixture_models.model_config('empty', str(tmp_path / 'empty'))])
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config, port=0, file_system_poll_wait_seconds=0))
  with caplog.at_level(logging.WARNING, logger='ganpipe.serving.manager'):
    server.start()
    try:
      for _ in range(3):
        server.service.manager.sync()
    finally:
      server.stop(grace=0)
  said = [r.getMessage() for r in caplog.records if r.name == 'ganpipe.serving.manager']
  assert said == [
      f'model later: its base path {tmp_path / "later"} does not exist; waiting for it',
      f'model empty: no versions under {tmp_path / "empty"} yet; waiting for its first version']
