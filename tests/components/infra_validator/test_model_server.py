"""Which model server runs: the configured binary, else tensorflow_model_server, else ganpipe's."""

import sys

import pytest

from ganpipe.components.infra_validator import model_server
from tests.components.infra_validator import conftest


def test_serving_binary_choice(tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))
  assert model_server.choose_serving_binary('') == model_server.ServingBinary('')
  own = model_server.choose_serving_binary('').command('m', '/base', 0)
  assert own[:3] == [sys.executable, '-m', 'ganpipe.serving'] and '--port' in own
  tf_serving = conftest.executable(tmp_path / 'tensorflow_model_server', 'exit 0\n')
  assert model_server.choose_serving_binary('').path == tf_serving
  assert model_server.ServingBinary(tf_serving).command('m', '/base', 8123) == [
      tf_serving, '--port=8123', '--model_name=m', '--model_base_path=/base']
  other = conftest.executable(tmp_path / 'other_server', 'exit 0\n')
  assert model_server.choose_serving_binary(other).path == other
  with pytest.raises(model_server.ServerError, match="'/nowhere/server' is not an executable"):
    model_server.choose_serving_binary('/nowhere/server')
