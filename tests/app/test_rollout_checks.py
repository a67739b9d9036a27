"""`promote --auto`'s live checks, on the per-version metrics our server renders."""

import grpc
import pytest

from ganpipe.app import rollout_checks
from ganpipe.serving import metrics

Figures = rollout_checks.Figures
LIMITS = rollout_checks.Thresholds(min_requests=10, error_rate_margin=0.05, latency_factor=2.0)


def _render(requests):
  """Metrics text after `requests`: (version, status, seconds) each."""
  registry = metrics.Metrics(served=lambda name: name == 'm')
  for version, code, seconds in requests:
    registry.record('m', 'predict', 'GRPC', code, seconds, version=version)
  registry.record('other', 'predict', 'GRPC', grpc.StatusCode.OK, 1.0, version=1)
  return registry.render()


def test_figures_per_version_from_the_servers_metrics():
  ok, bad = grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT
  text = _render([(1, ok, 0.001)] * 99 + [(1, ok, 0.1)] + [(2, ok, 0.002)] * 3 +
                 [(2, bad, 0.002)])
  figures = rollout_checks.version_figures(text, 'm')
  assert sorted(figures) == [1, 2]
  assert (figures[1].requests, figures[1].errors) == (100, 0)
  assert (figures[2].requests, figures[2].errors, figures[2].error_rate) == (4, 1, 0.25)
  # 99 of 100 requests took 1 ms: p99 falls in 1 ms's bucket (0.62 to 1.10 ms).
  assert 0.6 < figures[1].p99_ms <= 1.11
  assert 1.98 < figures[2].p99_ms <= 3.58  # 2 ms: the bucket from 1.98 to 3.57 ms


def test_a_server_without_per_version_metrics_is_named():
  text = '# TYPE :tensorflow:serving:request_count counter\n'
  with pytest.raises(rollout_checks.MetricsError, match='does not count requests per version'):
    rollout_checks.version_figures(text, 'm')
  assert rollout_checks.version_figures(_render([]), 'm') == {}  # declared, no requests yet


def test_quantile_interpolates_within_the_bucket_as_prometheus():
  cumulative = [(100.0, 50), (200.0, 100), (float('inf'), 100)]
  assert rollout_checks.quantile(0.5, cumulative) == pytest.approx(0.1)
  assert rollout_checks.quantile(0.75, cumulative) == pytest.approx(0.15)
  assert rollout_checks.quantile(0.99, [(100.0, 0), (float('inf'), 5)]) == pytest.approx(0.1)
  assert rollout_checks.quantile(0.99, []) is None


@pytest.mark.parametrize('canary, stable, reasons', [
    (Figures(20, 0, 1.0), Figures(100, 0, 1.0), []),
    (Figures(20, 1, 1.9), Figures(100, 0, 1.0), []),  # 5% errors, 1.9x: on the limits
    (Figures(9, 0, 1.0), Figures(100, 0, 1.0), ['served 9 requests, fewer than 10']),
    (Figures(20, 2, 1.0), Figures(100, 0, 1.0), ["error rate 10.00% is above stable's 0.00%"]),
    (Figures(20, 0, 2.5), Figures(100, 0, 1.0), ['p99 latency 2.5 ms is above 2 x']),
    (Figures(20, 0, 1.0), Figures(0, 0, None), ['stable served no requests']),
])
def test_judge(canary, stable, reasons):
  found = rollout_checks.judge(canary, stable, LIMITS)
  assert len(found) == len(reasons)
  for text, reason in zip(found, reasons):
    assert reason in text


@pytest.mark.parametrize('values, match', [
    ({'min_requests': 0}, 'min_requests must be at least 1'),
    ({'error_rate_margin': 1.5}, 'error_rate_margin must be between 0 and 1'),
    ({'latency_factor': 0.5}, 'latency_factor must be a number of at least 1'),
])
def test_bad_thresholds(values, match):
  with pytest.raises(ValueError, match=match):
    rollout_checks.Thresholds(**values)


def test_the_default_metrics_url_is_tf_servings_rest_port_beside_the_target():
  assert rollout_checks.default_metrics_url('models.local:8500') == (
      'http://models.local:8501/monitoring/prometheus/metrics')
