"""Per-version request metrics: what a canary rollout compares, by the version a label named."""

import urllib.request

import grpc
import numpy as np
import pytest

from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import metrics
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models
from tests.serving.test_metrics import _samples

VERSION_COUNT = ':ganpipe:serving:version_request_count'
VERSION_LATENCY = ':ganpipe:serving:version_request_latency'


def _count(samples, version, status, model='m'):
  return samples.get((VERSION_COUNT, frozenset({('model_name', model), ('status', status),
                                                ('model_version', str(version))})), 0)


def test_a_request_counts_under_the_version_it_resolved_to():
  registry = metrics.Metrics(served=lambda name: name == 'm')
  metrics.track_version()
  registry.record('m', 'predict', 'GRPC', grpc.StatusCode.OK, 0.001)  # never resolved: no version
  metrics.note_version(7)
  registry.record('m', 'predict', 'GRPC', grpc.StatusCode.OK, 0.001)
  registry.record('m', 'classify', 'REST', grpc.StatusCode.INTERNAL, 0.002)
  registry.record('m', 'get_model_metadata', 'GRPC', grpc.StatusCode.OK, 0.001)
  registry.record('made-up', 'predict', 'GRPC', grpc.StatusCode.OK, 0.001)
  samples = _samples(registry.render())
  assert _count(samples, 7, 'OK') == 1 and _count(samples, 7, 'INTERNAL') == 1
  labels = frozenset({('model_name', 'm'), ('model_version', '7')})
  assert samples[(VERSION_LATENCY + '_count', labels)] == 2
  assert samples[(VERSION_LATENCY + '_sum', labels)] == pytest.approx(3000)
  assert not any(name == VERSION_COUNT and ('model_name', 'made-up') in labels
                 for name, labels in samples)


def test_a_server_counts_each_label_under_its_version(tmp_path):
  for version in (1, 2):
    fixture_models.build_half_plus_two(str(tmp_path / 'm' / str(version)), version)
  config = fixture_models.server_config([fixture_models.model_config(
      'm', str(tmp_path / 'm'), policy='specific', versions=[1, 2])])
  config.model_config_list.config[0].version_labels.update({'stable': 1, 'canary': 2})
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config, port=0, rest_api_port=0, file_system_poll_wait_seconds=0,
      metrics_path='/metrics', allow_version_labels_for_unavailable_models=True)).start()
  try:
    with client_lib.ServingClient(f'127.0.0.1:{server.port}', retries=0) as client:
      for _ in range(3):
        client.predict('m', {'x': np.array([[1.0]], np.float32)}, version_label='stable')
      client.predict('m', {'x': np.array([[1.0]], np.float32)}, version_label='canary')
      with pytest.raises(client_lib.ServingError):
        client.predict('m', {'x': np.array([['a']])}, version_label='canary')
    request = urllib.request.Request(
        f'http://127.0.0.1:{server.rest_port}/v1/models/m/labels/canary:predict',
        data=b'{"instances": [[1.0]]}', method='POST')
    with urllib.request.urlopen(request, timeout=30) as response:
      assert response.status == 200
    with urllib.request.urlopen(f'http://127.0.0.1:{server.rest_port}/metrics',
                                timeout=30) as response:
      samples = _samples(response.read().decode())
  finally:
    server.stop(grace=1)
  assert _count(samples, 1, 'OK') == 3
  assert _count(samples, 2, 'OK') == 2  # one gRPC, one REST
  assert _count(samples, 2, 'INVALID_ARGUMENT') == 1
