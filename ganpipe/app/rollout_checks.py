"""The live checks before a canary is promoted, on the server's per-version metrics."""

import dataclasses
import math
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

DEFAULT_METRICS_PATH = '/monitoring/prometheus/metrics'
DEFAULT_REST_PORT = 8501


class MetricsError(Exception):
  """The server's metrics cannot be read, or hold no per-version figures."""


@dataclasses.dataclass(frozen=True)
class Figures:
  """One version's requests since it loaded: how many, how many failed, and their p99."""
  requests: int = 0
  errors: int = 0
  p99_ms: Optional[float] = None

  @property
  def error_rate(self) -> float:
    return self.errors / self.requests if self.requests else 0.0

  def describe(self) -> str:
    p99 = 'n/a' if self.p99_ms is None else f'{self.p99_ms:.1f} ms'
    return (f'{self.requests} requests, {self.errors} errors ({self.error_rate:.1%}), '
            f'p99 {p99}')


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """When a canary may be promoted.

  Attributes:
    min_requests: the canary has served at least this many requests.
    error_rate_margin: its error rate is at most stable's plus this (a fraction, 0.01 = 1 point).
    latency_factor: its p99 latency is at most this times stable's.
  """
  min_requests: int = 100
  error_rate_margin: float = 0.01
  latency_factor: float = 1.5

  def __post_init__(self):
    if self.min_requests < 1:
      raise ValueError(f'min_requests must be at least 1, got {self.min_requests}')
    if not 0 <= self.error_rate_margin <= 1:
      raise ValueError(f'error_rate_margin must be between 0 and 1, got '
                       f'{self.error_rate_margin}')
    if not self.latency_factor >= 1 or math.isinf(self.latency_factor):
      raise ValueError(f'latency_factor must be a number of at least 1, got '
                       f'{self.latency_factor}')


def default_metrics_url(target: str) -> str:
  """The REST port's metrics beside a gRPC target, as `ganpipe serve --rest_api_port 8501
  --monitoring_config_file ...` (TF Serving's defaults) serves them."""
  host = target.rpartition(':')[0] if ':' in target else target
  return f'http://{host or "localhost"}:{DEFAULT_REST_PORT}{DEFAULT_METRICS_PATH}'


def fetch(url: str, timeout: float) -> str:
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
      return response.read().decode('utf-8')
  except (urllib.error.URLError, OSError) as error:
    reason = getattr(error, 'reason', None) or error
    raise MetricsError(f'cannot read the metrics at {url}: {reason}') from None


def version_figures(text: str, model: str) -> Dict[int, Figures]:
  """Each version's figures, from the Prometheus text of the server's metrics.

  Raises:
    MetricsError: the text does not parse or has no per-version request metrics (as
      tensorflow_model_server's, whose request metrics are by model only).
  """
  # pylint: disable=import-outside-toplevel
  from prometheus_client import parser
  from ganpipe.serving import metrics
  counts: Dict[int, List[int]] = {}
  buckets: Dict[int, List[Tuple[float, float]]] = {}
  found = False
  try:
    for family in parser.text_string_to_metric_families(text):
      if family.name not in (metrics.VERSION_COUNT, metrics.VERSION_LATENCY):
        continue
      found = True
      for sample in family.samples:
        if sample.labels.get('model_name') != model:
          continue
        version = int(sample.labels['model_version'])
        if family.name == metrics.VERSION_COUNT:
          tally = counts.setdefault(version, [0, 0])
          tally[0] += int(sample.value)
          tally[1] += int(sample.value) if sample.labels['status'] != 'OK' else 0
        elif sample.name.endswith('_bucket'):
          buckets.setdefault(version, []).append((float(sample.labels['le']), sample.value))
  except ValueError as error:
    raise MetricsError(f'the metrics do not parse: {error}') from None
  if not found:
    raise MetricsError(f'the metrics have no {metrics.VERSION_COUNT}: the server does not count '
                       'requests per version (tensorflow_model_server does not; `ganpipe serve` '
                       'does)')
  return {version: Figures(requests, errors, quantile(0.99, buckets.get(version, [])))
          for version, (requests, errors) in counts.items()}


def quantile(q: float, cumulative: List[Tuple[float, float]]) -> Optional[float]:
  """The q-quantile in milliseconds of a histogram given as (upper bound µs, cumulative count),
  interpolated within its bucket as Prometheus' histogram_quantile does."""
  cumulative = sorted(cumulative)
  if not cumulative or not cumulative[-1][1]:
    return None
  rank = q * cumulative[-1][1]
  lower, below = 0.0, 0.0
  for bound, count in cumulative:
    if count >= rank:
      if math.isinf(bound):
        return lower / 1000  # the highest finite bound, as Prometheus answers
      inside = count - below
      return (lower + (bound - lower) * ((rank - below) / inside if inside else 1)) / 1000
    lower, below = bound, count
  return None


def judge(canary: Figures, stable: Figures, thresholds: Thresholds) -> List[str]:
  """Why the canary must not be promoted; empty when every check passes."""
  reasons = []
  if canary.requests < thresholds.min_requests:
    reasons.append(f'the canary served {canary.requests} requests, fewer than '
                   f'{thresholds.min_requests}')
  limit = stable.error_rate + thresholds.error_rate_margin
  if canary.error_rate > limit:
    reasons.append(f"the canary's error rate {canary.error_rate:.2%} is above stable's "
                   f'{stable.error_rate:.2%} + {thresholds.error_rate_margin:.2%}')
  if canary.p99_ms is not None and stable.p99_ms is None:
    reasons.append('stable served no requests to compare the latency with')
  elif canary.p99_ms is not None and canary.p99_ms > thresholds.latency_factor * stable.p99_ms:
    reasons.append(f"the canary's p99 latency {canary.p99_ms:.1f} ms is above "
                   f"{thresholds.latency_factor:g} x stable's {stable.p99_ms:.1f} ms")
  return reasons
