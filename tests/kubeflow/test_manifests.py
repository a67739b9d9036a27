"""The Kubernetes manifests: valid for the API, and TF Serving's arguments and readiness probe
mean the same to `ganpipe serve`."""

import argparse
import glob
import os
import subprocess

import kubernetes_validate
import pytest
import yaml

from ganpipe.serving import config as serving_config
from ganpipe.serving import serve_command
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models

MANIFESTS = os.path.join(os.path.dirname(__file__), '..', '..', 'ganpipe', 'kubeflow', 'manifests')


def _serving_container():
  with open(os.path.join(MANIFESTS, 'tf-serving.yaml'), encoding='utf-8') as f:
    deployment = next(doc for doc in yaml.safe_load_all(f) if doc['kind'] == 'Deployment')
  (container,) = deployment['spec']['template']['spec']['containers']
  return container


def test_tf_servings_arguments_in_the_manifest_are_ganpipe_serves_too(tmp_path):
  container = _serving_container()
  assert container['image'].startswith('tensorflow/serving:')
  models = tmp_path / 'models'
  models.mkdir()
  (models / 'models.config').write_text(
      f'model_config_list {{ config {{ name: "classifier" base_path: "{models}/classifier" '
      'model_platform: "tensorflow" } }\n')
  parser = argparse.ArgumentParser()
  serve_command.add_arguments(parser)
  # Every flag tensorflow_model_server gets there parses here, with the same meaning.
  args = parser.parse_args([arg.replace('/models/', f'{models}/') for arg in container['args']])
  options = serve_command.options_from_args(args)
  ports = {port['name']: port['containerPort'] for port in container['ports']}
  assert (options.port, options.rest_api_port) == (ports['grpc'], ports['http'])
  assert options.model_config_file == f'{models}/models.config'
  assert options.model_config_file_poll_wait_seconds == 60
  assert options.file_system_poll_wait_seconds == 30
  assert [m.name for m in options.model_config.model_config_list.config] == ['classifier']
  # The readiness probe asks the REST port.
  assert f"/dev/tcp/127.0.0.1/{ports['http']}" in _probe_script(container)


def test_every_manifest_is_valid_for_the_kubernetes_api():
  manifests = sorted(glob.glob(os.path.join(MANIFESTS, '*.yaml')))
  assert len(manifests) == 3
  for path in manifests:
    with open(path, encoding='utf-8') as f:
      for document in yaml.safe_load_all(f):
        # The API's own schemas, strictly: an unknown field is an error.
        kubernetes_validate.validate(document, '1.30.0', strict=True)


def _probe_script(container) -> str:
  command = container['readinessProbe']['exec']['command']
  assert command[:2] == ['bash', '-c']
  return command[2]


@pytest.fixture(name='serve')
def _serve(tmp_path):
  """Starts a REST server on the named models (a corrupt one fails to load)."""
  servers = []

  def start(names, corrupt=()):
    config = None
    for name in names:
      base = str(tmp_path / name)
      fixture_models.push_version(base, 1, fixture_models.build_corrupt if name in corrupt
                                  else lambda path: fixture_models.build_half_plus_two(path, 1))
      if config is None:
        config = serving_config.single_model_config(name, base)
      else:
        config.model_config_list.config.add(name=name, base_path=base,
                                            model_platform='tensorflow')
    server = server_lib.ModelServer(serving_config.ServerOptions(
        model_config=config, port=0, rest_api_port=0, file_system_poll_wait_seconds=0)).start()
    servers.append(server)
    return server
  yield start
  for server in servers:
    server.stop(grace=1)


def _probe(server) -> int:
  script = _probe_script(_serving_container()).replace('/8501', f'/{server.rest_port}')
  return subprocess.run(['bash', '-c', script], timeout=30, check=False).returncode


def test_the_readiness_probe_passes_once_every_model_serves(serve):
  assert _probe(serve(['classifier', 'generator'])) == 0


@pytest.mark.parametrize('names, corrupt', [
    (['classifier'], ()),
    (['classifier', 'generator'], ('generator',)),
], ids=['a model not configured', 'a model that failed to load'])
def test_the_readiness_probe_fails_while_a_model_does_not_serve(serve, names, corrupt):
  assert _probe(serve(names, corrupt)) != 0
