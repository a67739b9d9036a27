"""The Kubernetes manifests: TF Serving's arguments there mean the same to `ganpipe serve`."""

import argparse
import os

import yaml

from ganpipe.serving import serve_command

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
  # The readiness probe asks the REST API for the classifier's status.
  assert container['readinessProbe']['httpGet'] == {'path': '/v1/models/classifier',
                                                    'port': ports['http']}
