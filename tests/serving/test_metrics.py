"""`--monitoring_config_file`: Prometheus metrics under TF Serving's names, on the REST port."""

import argparse
import json
import re
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest

from ganpipe.serving import client as client_lib
from ganpipe.serving import config as config_lib
from ganpipe.serving import metrics
from ganpipe.serving import serve_command
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models

COUNT = ':tensorflow:serving:request_count'
LATENCY = ':tensorflow:serving:request_latency'
LOAD_COUNT = ':tensorflow:cc:saved_model:load_attempt_count'
LOAD_LATENCY = ':tensorflow:cc:saved_model:load_latency'
QUEUING = ':tensorflow:serving:batching_session:queuing_latency'
RUNS = ':tensorflow:serving:batching_session:wrapped_run_count'


def _samples(text: str):
  """{(name, frozenset of label pairs): value} from Prometheus text, checking every line parses."""
  samples = {}
  for line in text.splitlines():
    if line.startswith('# TYPE '):
      continue
    match = re.fullmatch(r'([^\s{]+)(?:\{(.*)\})? (\S+)', line)
    assert match, line
    labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ''))
    samples[(match.group(1), labels)] = float(match.group(3))
  return samples


def test_counts_and_a_cumulative_histogram_in_microseconds():
  registry = metrics.Metrics(served=lambda name: name == 'm')
  registry.record('m', 'predict', 'GRPC', grpc.StatusCode.OK, 15e-6)      # in the 18 µs bucket
  registry.record('m', 'predict', 'GRPC', grpc.StatusCode.OK, 0.002)      # 2,000 µs
  registry.record('m', 'predict', 'GRPC', grpc.StatusCode.INVALID_ARGUMENT, 1e-6)
  registry.record('made "up"\n', 'predict', 'REST', grpc.StatusCode.NOT_FOUND, 1e-6)
  text = registry.render()
  assert f'# TYPE {COUNT} counter\n' in text
  assert f'# TYPE {LATENCY} histogram\n' in text
  samples = _samples(text)
  assert samples[(COUNT, frozenset({('model_name', 'm'), ('status', 'OK')}))] == 2
  assert samples[(COUNT, frozenset({('model_name', 'm'), ('status', 'INVALID_ARGUMENT')}))] == 1
  # A model the server does not serve is not a label of its own.
  assert samples[(COUNT, frozenset({('model_name', ''), ('status', 'NOT_FOUND')}))] == 1
  grpc_labels = {('model_name', 'm'), ('API', 'predict'), ('entrypoint', 'GRPC')}
  buckets = {label_value: value for (name, labels), value in samples.items()
             if name == LATENCY + '_bucket' and grpc_labels < labels
             for key, label_value in labels if key == 'le'}
  assert len(buckets) == 34 and buckets['10'] == 1 and buckets['18'] == 2
  assert buckets['1983.59'] == 2 and buckets['3570.47'] == 3 and buckets['+Inf'] == 3
  assert samples[(LATENCY + '_count', frozenset(grpc_labels))] == 3
  assert samples[(LATENCY + '_sum', frozenset(grpc_labels))] == pytest.approx(2016, abs=0.5)


def test_batching_metrics_count_model_calls_and_each_requests_queue_wait():
  registry = metrics.Metrics(served=lambda name: True)
  assert QUEUING not in registry.render()  # Nothing about batching until a batch runs.
  registry.record_batch('batch_threads', [50e-6, 0.001])  # one call for two requests
  registry.record_batch('batch_threads', [0.0002])
  samples = _samples(registry.render())
  assert samples[(RUNS, frozenset())] == 2
  pool = frozenset({('thread_pool_name', 'batch_threads')})
  assert samples[(QUEUING + '_count', pool)] == 3
  assert samples[(QUEUING + '_sum', pool)] == pytest.approx(1250)
  assert samples[(QUEUING + '_bucket', pool | {('le', '100')})] == 1
  assert samples[(QUEUING + '_bucket', pool | {('le', '+Inf')})] == 3


@pytest.mark.parametrize('text, expected', [
    ('prometheus_config { enable: true }', metrics.DEFAULT_PATH),
    ('prometheus_config { enable: true, path: "/metrics" }', '/metrics'),
    ('prometheus_config { enable: false, path: "/metrics" }', None),
    ('', None),
])
def test_monitoring_config(tmp_path, text, expected):
  path = tmp_path / 'monitoring.config'
  path.write_text(text)
  assert metrics.read_monitoring_config(str(path)) == expected


@pytest.mark.parametrize('text, match', [
    ('prometheus_config { enable: true, path: "metrics" }', "path 'metrics' must start with /"),
    ('prometheus_config { enabled: true }', 'has no field named "enabled"'),
    (None, 'No such file'),
])
def test_a_bad_monitoring_config_is_a_usage_error(tmp_path, text, match):
  path = tmp_path / 'monitoring.config'
  if text is not None:
    path.write_text(text)
  parser = argparse.ArgumentParser()
  serve_command.add_arguments(parser)
  args = parser.parse_args(['--model_name', 'm', '--model_base_path', str(tmp_path),
                            '--rest_api_port', '0', '--monitoring_config_file', str(path)])
  with pytest.raises(config_lib.ConfigError, match=match):
    serve_command.options_from_args(args)


def test_metrics_need_the_rest_port(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='give --rest_api_port'):
    config_lib.ServerOptions(model_config=config_lib.single_model_config('m', str(tmp_path)),
                             metrics_path='/metrics')


def _get(url):
  try:
    with urllib.request.urlopen(url, timeout=30) as response:
      return response.status, response.headers['Content-Type'], response.read().decode()
  except urllib.error.HTTPError as error:
    return error.code, error.headers['Content-Type'], error.read().decode()


def test_a_batching_server_reports_its_batches(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config('m', str(tmp_path / 'm')), port=0,
      rest_api_port=0, file_system_poll_wait_seconds=0, metrics_path='/metrics',
      enable_batching=True, batching=config_lib.BatchingParameters(
          max_batch_size=4, batch_timeout_micros=200_000, thread_pool_name='m_batches'))).start()
  try:
    with client_lib.ServingClient(f'127.0.0.1:{server.port}', retries=0) as client:
      for _ in range(3):
        client.predict('m', {'x': np.array([[1.0]], np.float32)})
    status, _, text = _get(f'http://127.0.0.1:{server.rest_port}/metrics')
  finally:
    server.stop(grace=1)
  assert status == 200
  samples = _samples(text)
  # Three requests one after another: three calls, each request waiting out the 200 ms timeout.
  assert samples[(RUNS, frozenset())] == 3
  pool = frozenset({('thread_pool_name', 'm_batches')})
  assert samples[(QUEUING + '_count', pool)] == 3
  assert samples[(QUEUING + '_sum', pool)] >= 3 * 200_000


@pytest.mark.parametrize('metrics_path', ['/monitoring/prometheus/metrics', None])
def test_a_server_counts_its_grpc_and_rest_requests(tmp_path, metrics_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  fixture_models.build_corrupt(str(tmp_path / 'broken' / '1'))
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=fixture_models.server_config([
          fixture_models.model_config('m', str(tmp_path / 'm')),
          fixture_models.model_config('broken', str(tmp_path / 'broken'))]), port=0,
      rest_api_port=0, file_system_poll_wait_seconds=0, metrics_path=metrics_path)).start()
  rest = f'http://127.0.0.1:{server.rest_port}'
  try:
    with client_lib.ServingClient(f'127.0.0.1:{server.port}', retries=0) as client:
      client.predict('m', {'x': np.array([[1.0]], np.float32)})
      with pytest.raises(client_lib.ServingError, match='INVALID_ARGUMENT'):
        client.predict('m', {'nope': np.array([[1.0]], np.float32)})
    request = urllib.request.Request(f'{rest}/v1/models/m:predict', method='POST',
                                     data=json.dumps({'instances': [[2.0]]}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
      assert response.status == 200
    status, content_type, text = _get(f'{rest}/monitoring/prometheus/metrics')
  finally:
    server.stop(grace=1)
  if metrics_path is None:
    assert status == 404  # off unless the monitoring config turns it on
    return
  assert status == 200 and content_type == metrics.CONTENT_TYPE
  samples = _samples(text)
  assert samples[(COUNT, frozenset({('model_name', 'm'), ('status', 'OK')}))] == 2
  assert samples[(COUNT, frozenset({('model_name', 'm'), ('status', 'INVALID_ARGUMENT')}))] == 1
  for entrypoint, count in (('GRPC', 2), ('REST', 1)):
    labels = frozenset({('model_name', 'm'), ('API', 'predict'), ('entrypoint', entrypoint)})
    assert samples[(LATENCY + '_count', labels)] == count
  loads = {(dict(labels)['model_path'], dict(labels)['status']): value
           for (name, labels), value in samples.items() if name == LOAD_COUNT}
  assert loads == {(str(tmp_path / 'm' / '1'), 'success'): 1,
                   (str(tmp_path / 'broken' / '1'), 'fail'): 1}
  assert samples[(LOAD_LATENCY, frozenset({('model_path', str(tmp_path / 'm' / '1'))}))] > 0
