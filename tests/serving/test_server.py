"""Starting the server: what a user sees when it cannot start."""

import socket

from serving import serve_command
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
