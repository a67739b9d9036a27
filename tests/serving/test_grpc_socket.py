"""--grpc_socket_path: gRPC on a UNIX socket too, as TF Serving serves a sidecar on one host."""

import os
import socket

import pytest

from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models
from tests.serving.flags import serve_options


@pytest.fixture(name='start')
def _start(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  servers = []

  def start(socket_path):
    server = server_lib.ModelServer(config_lib.ServerOptions(
        model_config=config_lib.single_model_config('m', str(tmp_path / 'm')), port=0,
        file_system_poll_wait_seconds=0, grpc_socket_path=str(socket_path))).start()
    servers.append(server)
    return server

  yield start
  for server in servers:
    server.stop(grace=1)


def _status(target):
  with client_lib.ServingClient(target, retries=0) as client:
    return [s['state'] for s in client.model_status('m')]


def test_the_server_answers_on_the_socket_and_the_port_and_removes_the_socket(start, tmp_path):
  path = tmp_path / 'grpc.sock'
  # A socket left by a server that was killed: nobody listens on it, so it is replaced.
  with socket.socket(socket.AF_UNIX) as stale:
    stale.bind(str(path))
  server = start(path)
  assert _status(f'unix:{path}') == ['AVAILABLE']
  assert _status(f'127.0.0.1:{server.port}') == ['AVAILABLE']
  server.stop(grace=1)
  assert not os.path.lexists(path)


def test_a_socket_another_server_listens_on_is_not_taken(start, tmp_path):
  path = tmp_path / 'grpc.sock'
  start(path)
  # gRPC alone would unlink the live socket and bind its own, silently cutting off the first.
  with pytest.raises(OSError, match=f'another server is listening on unix:{path}'):
    start(path)
  assert _status(f'unix:{path}') == ['AVAILABLE']


def test_a_file_in_the_way_of_the_socket_is_a_clear_error_and_kept(start, tmp_path):
  path = tmp_path / 'grpc.sock'
  path.write_text('notes')
  with pytest.raises(OSError, match='exists and is not a socket; remove it'):
    start(path)
  assert path.read_text() == 'notes'


def test_a_socket_in_a_missing_folder_is_a_clear_error(start, tmp_path):
  with pytest.raises(OSError, match='is its folder missing'):
    start(tmp_path / 'missing' / 'grpc.sock')


def test_a_socket_path_too_long_for_unix_sockets_is_a_clear_error(start, tmp_path):
  with pytest.raises(OSError, match='bytes long; UNIX socket paths are limited to 107'):
    start(tmp_path / ('x' * 120 + '.sock'))


def test_the_socket_flag_takes_tf_servings_name():
  assert serve_options('--grpc_socket_path', '/run/tfs.sock').grpc_socket_path == '/run/tfs.sock'
  assert serve_options().grpc_socket_path is None
