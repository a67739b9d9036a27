"""Prometheus metrics, as tensorflow_model_server exports them with `--monitoring_config_file`.

The file is TF Serving's MonitoringConfig text proto:

    prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }

and the metrics are served on the REST port at that path, in Prometheus' text format, under TF
Serving's own names, so dashboards and alerts written for it work unchanged:

- `:tensorflow:serving:request_count{model_name, status}`: requests by model and status code
  name (`OK`, `INVALID_ARGUMENT`, ...);
- `:tensorflow:serving:request_latency{model_name, API, entrypoint}`: a histogram of request
  wall time in microseconds, with TF Serving's buckets (exponential: 10 µs, x1.8, 33 buckets);
  API is `predict`, `classify` or `get_model_metadata`, entrypoint `GRPC` or `REST`;
- `:tensorflow:cc:saved_model:load_attempt_count{model_path, status}`: SavedModel loads, status
  `success` or `fail`, and `:tensorflow:cc:saved_model:load_latency{model_path}`, the
  microseconds they took;
- with batching, `:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}`: a
  histogram of the microseconds each request waited for its batch (TF Serving's buckets: 100 µs,
  x1.2, 52 buckets), and `:tensorflow:serving:batching_session:wrapped_run_count`, the model
  calls batches made. Requests over calls is the mean batch size.

A request for a model the server does not serve is counted under `model_name=""`: a label per
name a client makes up would let clients grow the server's memory without bound.

TF Serving has no per-version request metric (its counters, tensorflow_serving/servables/
tensorflow/util.cc, are by model name only), and a canary rollout needs one: two families of our
own, under our own prefix so that nothing mistakes them for TF Serving's, count each
Predict, Classify or Regress request that reached a version under that version (the one its
version or label resolved to):

- `:ganpipe:serving:version_request_count{model_name, model_version, status}`;
- `:ganpipe:serving:version_request_latency{model_name, model_version}`: a histogram in
  microseconds, with the buckets of request_latency.
"""

import bisect
import collections
import contextvars
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from google.protobuf import text_format
import grpc

from ganpipe.serving import protos

DEFAULT_PATH = '/monitoring/prometheus/metrics'
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
# monitoring::Buckets::Exponential(10, 1.8, 33): the upper bounds, in microseconds.
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))

_REQUEST_COUNT = ':tensorflow:serving:request_count'
_REQUEST_LATENCY = ':tensorflow:serving:request_latency'
_LOAD_COUNT = ':tensorflow:cc:saved_model:load_attempt_count'
_LOAD_LATENCY = ':tensorflow:cc:saved_model:load_latency'
_QUEUING_LATENCY = ':tensorflow:serving:batching_session:queuing_latency'
_WRAPPED_RUNS = ':tensorflow:serving:batching_session:wrapped_run_count'
VERSION_COUNT = ':ganpipe:serving:version_request_count'
VERSION_LATENCY = ':ganpipe:serving:version_request_latency'
# Only inference counts for a version: a metadata request says nothing of how it serves.
_INFERENCE_APIS = ('predict', 'classify', 'regress')
# The version the current request resolved to: a holder each transport sets per request (a list,
# so that a resolve on a thread or task that copied the context still fills it).
_RESOLVED: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar('resolved_version',
                                                                           default=None)
# monitoring::Buckets::Exponential(100, 1.2, 52), batching_session.cc.
QUEUING_BUCKETS_US = tuple(100 * 1.2**i for i in range(52))


# tensorflow.serving.MonitoringConfig (monitoring_config.proto).
MonitoringConfig = protos.message_classes('tensorflow_serving/config/monitoring_config.proto', {
    'PrometheusConfig': [('enable', protos.BOOL), ('path', protos.STRING)],
    'MonitoringConfig': [('prometheus_config', '.tensorflow.serving.PrometheusConfig')],
})['MonitoringConfig']


def track_version() -> None:
  """Starts a request: the version it resolves to (note_version) goes to its metrics."""
  _RESOLVED.set([])


def note_version(version: int) -> None:
  """The current request is served by `version` (called where a ModelSpec is resolved)."""
  holder = _RESOLVED.get()
  if holder is not None:
    holder.append(version)


def resolved_version() -> Optional[int]:
  """The version the current request resolved to, if it got that far."""
  holder = _RESOLVED.get()
  return holder[-1] if holder else None


def read_monitoring_config(path: str) -> Optional[str]:
  """The metrics path a MonitoringConfig file enables, or None when Prometheus is off.

  Raises:
    ValueError: the file cannot be read, does not parse, or names a path not starting with /.
  """
  try:
    with open(path, encoding='utf-8') as f:
      config = text_format.Parse(f.read(), MonitoringConfig())
  except (OSError, text_format.ParseError) as error:
    raise ValueError(f'--monitoring_config_file {path}: {error}') from None
  if not config.prometheus_config.enable:
    return None
  metrics_path = config.prometheus_config.path or DEFAULT_PATH
  if not metrics_path.startswith('/'):
    raise ValueError(f'--monitoring_config_file {path}: path {metrics_path!r} must start with /')
  return metrics_path


class Metrics:
  """Request counts and latencies; thread-safe, cheap enough for every request."""

  def __init__(self, served: Callable[[str], bool]):
    """`served(name)`: whether the server serves a model of that name now."""
    self._served = served
    self._lock = threading.Lock()
    self._counts: Dict[Tuple[str, str], int] = collections.Counter()
    # (model_name, API, entrypoint) -> per-bucket counts (the last is +Inf), sum, count.
    self._latencies: Dict[Tuple[str, str, str], List[float]] = {}
    self._loads: Dict[Tuple[str, str], int] = collections.Counter()
    self._load_micros: Dict[str, float] = collections.Counter()
    self._queuing: Dict[str, List[float]] = {}  # thread_pool_name -> histogram
    self._wrapped_runs = 0
    self._version_counts: Dict[Tuple[str, int, str], int] = collections.Counter()
    self._version_latencies: Dict[Tuple[str, int], List[float]] = {}

  def record_load(self, model_path: str, succeeded: bool, seconds: float) -> None:
    with self._lock:
      self._loads[(model_path, 'success' if succeeded else 'fail')] += 1
      self._load_micros[model_path] += seconds * 1e6

  def record(self, model_name: str, api: str, entrypoint: str, code: grpc.StatusCode,
             seconds: float, version: Optional[int] = None) -> None:
    """One request; `version`: the version it resolved to (by default, resolved_version())."""
    name = model_name if self._served(model_name) else ''
    version = resolved_version() if version is None else version
    with self._lock:
      self._counts[(name, code.name)] += 1
      histogram = self._latencies.get((name, api, entrypoint))
      if histogram is None:
        histogram = self._latencies[(name, api, entrypoint)] = _histogram(LATENCY_BUCKETS_US)
      _observe(histogram, LATENCY_BUCKETS_US, seconds * 1e6)
      if name and version is not None and api in _INFERENCE_APIS:
        self._version_counts[(name, version, code.name)] += 1
        histogram = self._version_latencies.get((name, version))
        if histogram is None:
          histogram = self._version_latencies[(name, version)] = _histogram(LATENCY_BUCKETS_US)
        _observe(histogram, LATENCY_BUCKETS_US, seconds * 1e6)

  def record_batch(self, thread_pool_name: str, waits_seconds: Sequence[float]) -> None:
    """One model call of a batch, whose requests waited `waits_seconds` in its queue."""
    with self._lock:
      self._wrapped_runs += 1
      histogram = self._queuing.get(thread_pool_name)
      if histogram is None:
        histogram = self._queuing[thread_pool_name] = _histogram(QUEUING_BUCKETS_US)
      for wait in waits_seconds:
        histogram[bisect.bisect_left(QUEUING_BUCKETS_US, wait * 1e6)] += 1
      histogram[-2] += sum(waits_seconds) * 1e6
      histogram[-1] += len(waits_seconds)

  def render(self) -> str:
    """The Prometheus text exposition of every metric."""
    with self._lock:
      counts = sorted(self._counts.items())
      latencies = sorted((key, list(values)) for key, values in self._latencies.items())
      loads, load_micros = sorted(self._loads.items()), sorted(self._load_micros.items())
      queuing = sorted((key, list(values)) for key, values in self._queuing.items())
      wrapped_runs = self._wrapped_runs
      version_counts = sorted(self._version_counts.items())
      version_latencies = sorted((k, list(v)) for k, v in self._version_latencies.items())
    lines = [f'# TYPE {_LOAD_COUNT} counter']
    for (path, status), count in loads:
      lines.append(f'{_LOAD_COUNT}{_labels(model_path=path, status=status)} {count}')
    lines.append(f'# TYPE {_LOAD_LATENCY} counter')
    for path, micros in load_micros:
      lines.append(f'{_LOAD_LATENCY}{_labels(model_path=path)} {micros:.0f}')
    lines.append(f'# TYPE {_REQUEST_COUNT} counter')
    for (name, status), count in counts:
      lines.append(f'{_REQUEST_COUNT}{_labels(model_name=name, status=status)} {count}')
    lines.append(f'# TYPE {_REQUEST_LATENCY} histogram')
    for (name, api, entrypoint), values in latencies:
      lines += _histogram_lines(_REQUEST_LATENCY, LATENCY_BUCKETS_US, values,
                                {'model_name': name, 'API': api, 'entrypoint': entrypoint})
    if wrapped_runs:
      lines.append(f'# TYPE {_QUEUING_LATENCY} histogram')
      for pool, values in queuing:
        lines += _histogram_lines(_QUEUING_LATENCY, QUEUING_BUCKETS_US, values,
                                  {'thread_pool_name': pool})
      lines += [f'# TYPE {_WRAPPED_RUNS} counter', f'{_WRAPPED_RUNS} {wrapped_runs}']
    # Declared even before a request: a rollout tells "no requests yet" from "no such metric".
    lines.append(f'# TYPE {VERSION_COUNT} counter')
    for (name, version, status), count in version_counts:
      lines.append(f'{VERSION_COUNT}'
                   f'{_labels(model_name=name, model_version=version, status=status)} {count}')
    lines.append(f'# TYPE {VERSION_LATENCY} histogram')
    for (name, version), values in version_latencies:
      lines += _histogram_lines(VERSION_LATENCY, LATENCY_BUCKETS_US, values,
                                {'model_name': name, 'model_version': str(version)})
    return '\n'.join(lines) + '\n'


def _histogram(buckets: Sequence[float]) -> List[float]:
  """Per-bucket counts (the last one +Inf), then the sum and the count."""
  return [0] * (len(buckets) + 1) + [0.0, 0]


def _observe(histogram: List[float], buckets: Sequence[float], value: float) -> None:
  histogram[bisect.bisect_left(buckets, value)] += 1
  histogram[-2] += value
  histogram[-1] += 1


def _histogram_lines(name: str, buckets: Sequence[float], values: List[float],
                     labels: Dict[str, str]) -> List[str]:
  lines, cumulative = [], 0
  for bound, count in zip(tuple(buckets) + (float('inf'),), values):
    cumulative += count
    le = '+Inf' if bound == float('inf') else f'{bound:.6g}'
    lines.append(f'{name}_bucket{_labels(**labels, le=le)} {cumulative}')
  lines.append(f'{name}_sum{_labels(**labels)} {values[-2]:.6g}')
  lines.append(f'{name}_count{_labels(**labels)} {values[-1]}')
  return lines


def _labels(**labels: str) -> str:
  def escape(value: str) -> str:
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
  return '{' + ','.join(f'{key}="{escape(str(value))}"' for key, value in labels.items()) + '}'
