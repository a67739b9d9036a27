"""Reliability of ganpipe's own model server: bad versions, hot swaps, reloads, warmup, batching.

These need the filesystem the server reads and its process, so they always start ganpipe's server
(never TF_SERVING_TARGET). Semantics expected are TF Serving's.
"""

import collections
import os
import shutil
import signal
import threading
import time
from typing import Callable, Dict, List, Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fixture_models as fm

pytestmark = pytest.mark.e2e

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
CORRUPT = 'corrupt_target'
HOT_SWAP = 'hot_swap'
WARM = 'warm'
LATEST_TWO = 'latest_two'
PINNED = 'pinned'
LABELLED = 'labelled'
ADDED = 'added'
POLL = ['--file_system_poll_wait_seconds', '0.2']


def _half_plus_two(version: int) -> fm.BuildFn:
  return lambda export_dir: fm.build_half_plus_two(export_dir, version)


def _request(name: str, rows, version: Optional[int] = None) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  request.inputs['x'].CopyFrom(tf.make_tensor_proto(rows, dtype=tf.float32))
  return request


def _status(stub, name: str) -> Dict[int, get_model_status_pb2.ModelVersionStatus]:
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  return {s.version: s for s in stub.GetModelStatus(request, timeout=10).model_version_status}


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
  deadline = time.monotonic() + timeout_s
  while not condition():
    if time.monotonic() > deadline:
      pytest.fail(f'timed out after {timeout_s:.0f} s waiting for {what()}')
    time.sleep(0.05)


class Client:
  """Stubs on one channel to a server."""

  def __init__(self, target: str):
    self.channel = grpc.insecure_channel(target)
    self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

  def y(self, name: str, x: float, version: Optional[int] = None, label: Optional[str] = None):
    """(version that answered, y) for one row."""
    request = _request(name, [[x]], version)
    if label is not None:
      request.model_spec.version_label = label
    response = self.predict.Predict(request, timeout=30)
    return response.model_spec.version.value, tf.make_ndarray(response.outputs['y']).tolist()

  def close(self):
    self.channel.close()


@pytest.fixture(scope='module')
def swap_server(server_factory, tmp_path_factory):
  """One server for the tests that change model folders; each test owns one model."""
  root = str(tmp_path_factory.mktemp('reliability-models'))
  for name in (CORRUPT, HOT_SWAP, WARM, LATEST_TWO, PINNED, LABELLED):
    fm.push_version(os.path.join(root, name), 1, _half_plus_two(1))
  fm.push_version(os.path.join(root, LABELLED), 2, _half_plus_two(2))
  config_path = os.path.join(root, fm.CONFIG_FILE)
  fm.write_config(config_path, _base_config(root))
  versions = {CORRUPT: [1], HOT_SWAP: [1], WARM: [1], LATEST_TWO: [1], PINNED: [1],
              LABELLED: [1, 2]}
  server = server_factory.start(['--model_config_file', config_path, *POLL], versions,
                                name='reliability')
  server.model_root = root
  yield server
  assert server.process.terminate() == 0, server.describe()


def _base_config(root: str, labels: Optional[Dict[str, int]] = None):
  """The swap server's config; `labels` go to LABELLED. Reloads must repeat all of it."""
  def path(name):
    return os.path.join(root, name)
  return fm.server_config(
      [fm.model_config(name, path(name)) for name in (CORRUPT, HOT_SWAP, WARM)] +
      [fm.model_config(LATEST_TWO, path(LATEST_TWO), num_latest=2),
       fm.model_config(PINNED, path(PINNED), policy='specific', versions=[1]),
       fm.model_config(LABELLED, path(LABELLED), policy='all', labels=labels)])


def _reload(client: Client, config) -> None:
  response = client.models.HandleReloadConfigRequest(
      model_management_pb2.ReloadConfigRequest(config=config), timeout=120)
  assert response.status.error_code == 0, response


@pytest.fixture
def client(swap_server):
  connection = Client(swap_server.grpc_target)
  yield connection
  connection.close()


@pytest.fixture
def restore_config(swap_server, client):
  """Reloads the base config after a test that changes it, so a failure stays in its test."""
  yield
  _reload(client, _base_config(swap_server.model_root))


def test_corrupt_version_is_reported_and_the_previous_one_keeps_serving(swap_server, client):
  base = os.path.join(swap_server.model_root, CORRUPT)
  fm.push_version(base, 2, fm.build_corrupt)

  answers = set()

  def failed_load_reported() -> bool:
    # Requests keep being answered, by version 1, while version 2 fails to load.
    version, y = client.y(CORRUPT, 4.0)
    answers.add((version, y[0][0]))
    states = _status(client.models, CORRUPT)
    return 2 in states and states[2].state == END

  _wait_for(failed_load_reported, 30,
            lambda: f'version 2 to end in error; status: {_status(client.models, CORRUPT)}')
  states = _status(client.models, CORRUPT)
  assert states[2].status.error_code != 0, states[2]
  assert states[2].status.error_message, states[2]
  assert states[1].state == AVAILABLE and states[1].status.error_code == 0, states[1]
  assert answers == {(1, fm.half_plus_two_y(1, 4.0))}, answers
  assert client.y(CORRUPT, 4.0) == (1, [[fm.half_plus_two_y(1, 4.0)]])

  # A good version after the bad one still loads and takes over.
  fm.push_version(base, 3, _half_plus_two(3))
  _wait_for(lambda: client.y(CORRUPT, 4.0)[0] == 3, 30,
            lambda: f'version 3 to serve; status: {_status(client.models, CORRUPT)}')
  assert client.y(CORRUPT, 4.0) == (3, [[fm.half_plus_two_y(3, 4.0)]])


def test_hot_swap_under_load_fails_no_request(swap_server):
  threads, per_thread, swap_after = 8, 2000, 2000
  errors: List[str] = []
  wrong: List[str] = []
  seen = collections.Counter()
  done = [0]
  lock = threading.Lock()
  half_way = threading.Event()

  def work(worker: int) -> None:
    connection = Client(swap_server.grpc_target)
    try:
      for i in range(per_thread):
        x = float((worker * per_thread + i) % 1024)
        try:
          version, y = connection.y(HOT_SWAP, x)
        except grpc.RpcError as error:
          with lock:
            errors.append(f'{error.code().name}: {error.details()}')
          continue
        with lock:
          seen[version] += 1
          if version not in (1, 2) or y != [[fm.half_plus_two_y(version, x)]]:
            wrong.append(f'x={x}: version {version} answered {y}')
          done[0] += 1
          if done[0] == swap_after:
            half_way.set()
    finally:
      connection.close()

  workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for worker in workers:
    worker.start()
  started = half_way.wait(timeout=120)
  fm.push_version(os.path.join(swap_server.model_root, HOT_SWAP), 2, _half_plus_two(2))
  for worker in workers:
    worker.join(timeout=600)
  assert started, f'fewer than {swap_after} requests were answered; errors: {errors[:5]}'
  assert not any(worker.is_alive() for worker in workers), 'clients still running after 600 s'
  assert not errors, f'{len(errors)} failed requests, e.g. {errors[:5]}'
  assert not wrong, f'{len(wrong)} wrong answers, e.g. {wrong[:5]}'
  assert sum(seen.values()) == threads * per_thread
  assert seen[1] > 0 and seen[2] > 0, f'answers by version: {dict(seen)}'

  # Under the default policy (latest 1) version 1 is then unloaded, and ends without error.
  client = Client(swap_server.grpc_target)
  try:
    _wait_for(lambda: _status(client.models, HOT_SWAP)[1].state == END, 30,
              lambda: f'version 1 to unload; status: {_status(client.models, HOT_SWAP)}')
    assert _status(client.models, HOT_SWAP)[1].status.error_code == 0
    with pytest.raises(grpc.RpcError) as unloaded:
      client.y(HOT_SWAP, 1.0, version=1)
    assert unloaded.value.code() == grpc.StatusCode.NOT_FOUND, unloaded.value.details()
  finally:
    client.close()


def test_reload_config_adds_and_removes_a_model(swap_server, client, restore_config):
  root = swap_server.model_root
  fm.push_version(os.path.join(root, ADDED), 1, _half_plus_two(1))
  with_added = _base_config(root)
  with_added.model_config_list.config.append(fm.model_config(ADDED, os.path.join(root, ADDED)))

  _reload(client, with_added)
  # TF Serving's ReloadConfig returns only once the added models are AVAILABLE.
  assert _status(client.models, ADDED)[1].state == AVAILABLE
  assert client.y(ADDED, 2.0) == (1, [[fm.half_plus_two_y(1, 2.0)]])

  _reload(client, _base_config(root))

  def removed() -> bool:
    try:
      client.y(ADDED, 2.0)
    except grpc.RpcError as error:
      assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
      return True
    return False

  _wait_for(removed, 30, lambda: f'{ADDED} to be gone; status: {_status(client.models, ADDED)}')
  # The models kept in the config are untouched.
  version, y = client.y(HOT_SWAP, 2.0)
  assert y == [[fm.half_plus_two_y(version, 2.0)]]
  assert _status(client.models, WARM)[1].state == AVAILABLE


def test_reload_config_moves_version_labels(swap_server, client, restore_config):
  root = swap_server.model_root
  _reload(client, _base_config(root, labels={'live': 1}))
  assert client.y(LABELLED, 2.0, label='live') == (1, [[fm.half_plus_two_y(1, 2.0)]])
  _reload(client, _base_config(root, labels={'live': 2}))
  assert client.y(LABELLED, 2.0, label='live') == (2, [[fm.half_plus_two_y(2, 2.0)]])

  # TF Serving refuses a label on a version that is not available, and keeps the old labels.
  with pytest.raises(grpc.RpcError) as refused:
    client.models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=_base_config(root, labels={'live': 7})),
        timeout=120)
  assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
  assert client.y(LABELLED, 2.0, label='live') == (2, [[fm.half_plus_two_y(2, 2.0)]])

  _reload(client, _base_config(root))
  with pytest.raises(grpc.RpcError) as unknown:
    client.y(LABELLED, 2.0, label='live')
  assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT, unknown.value.details()


@pytest.mark.parametrize('break_config, pattern', [
    pytest.param(lambda c: c.model_config_list.config.append(c.model_config_list.config[0]),
                 CORRUPT, id='duplicate-name'),
    pytest.param(lambda c: setattr(c.model_config_list.config[0], 'base_path', 'relative/path'),
                 'relative/path', id='relative-base-path'),
])
def test_reload_config_rejects_a_bad_config_and_keeps_serving(swap_server, client, restore_config,
                                                              break_config, pattern):
  config = _base_config(swap_server.model_root)
  break_config(config)
  with pytest.raises(grpc.RpcError) as refused:
    client.models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=120)
  assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
  assert pattern in refused.value.details()
  for name in (CORRUPT, HOT_SWAP, WARM, LATEST_TWO, PINNED, LABELLED):
    version, y = client.y(name, 2.0)
    assert y == [[fm.half_plus_two_y(version, 2.0)]], name


def test_version_policies_latest_two_and_specific(swap_server, client):
  root = swap_server.model_root
  fm.push_version(os.path.join(root, LATEST_TWO), 2, _half_plus_two(2))
  _wait_for(lambda: {v for v, s in _status(client.models, LATEST_TWO).items()
                     if s.state == AVAILABLE} == {1, 2}, 30,
            lambda: f'versions 1 and 2 of {LATEST_TWO}: {_status(client.models, LATEST_TWO)}')
  # PINNED serves only version 1: a version 2 on disk must never load. It is pushed before
  # LATEST_TWO's version 3, so once that one is in, the server has seen PINNED's too.
  fm.push_version(os.path.join(root, PINNED), 2, _half_plus_two(2))
  fm.push_version(os.path.join(root, LATEST_TWO), 3, _half_plus_two(3))
  _wait_for(lambda: {v for v, s in _status(client.models, LATEST_TWO).items()
                     if s.state == AVAILABLE} == {2, 3}, 30,
            lambda: f'versions 2 and 3 of {LATEST_TWO}: {_status(client.models, LATEST_TWO)}')
  _wait_for(lambda: _status(client.models, LATEST_TWO)[1].state == END, 30,
            lambda: f'version 1 of {LATEST_TWO} to unload: {_status(client.models, LATEST_TWO)}')
  assert client.y(LATEST_TWO, 2.0) == (3, [[fm.half_plus_two_y(3, 2.0)]])
  assert client.y(LATEST_TWO, 2.0, version=2) == (2, [[fm.half_plus_two_y(2, 2.0)]])
  with pytest.raises(grpc.RpcError) as unloaded:
    client.y(LATEST_TWO, 2.0, version=1)
  assert unloaded.value.code() == grpc.StatusCode.NOT_FOUND, unloaded.value.details()

  time.sleep(1.0)  # five more polls of the base paths
  pinned = _status(client.models, PINNED)
  assert pinned[1].state == AVAILABLE and (2 not in pinned or pinned[2].state != AVAILABLE), pinned
  assert client.y(PINNED, 2.0) == (1, [[fm.half_plus_two_y(1, 2.0)]])
  with pytest.raises(grpc.RpcError) as excluded:
    client.y(PINNED, 2.0, version=2)
  assert excluded.value.code() == grpc.StatusCode.NOT_FOUND, excluded.value.details()


def test_warmup_runs_before_the_version_is_available(swap_server, client, tmp_path):
  markers = tmp_path / 'markers'
  markers.mkdir()
  warmup_xs = [1001, 1002, 1003]
  fm.push_version(os.path.join(swap_server.model_root, WARM), 2,
                  lambda d: fm.build_warmup_probe(d, str(markers), warmup_xs, seconds=0.3))

  seen_states = []

  def available() -> bool:
    state = _status(client.models, WARM).get(2)
    seen_states.append(None if state is None else state.state)
    return state is not None and state.state == AVAILABLE

  deadline = time.monotonic() + 60
  while not available():
    assert time.monotonic() < deadline, f'version 2 never AVAILABLE; states seen: {seen_states}'
    time.sleep(0.02)
  # Listed at the first sight of AVAILABLE: every warmup request must already have run.
  ran = sorted(os.listdir(markers))
  assert ran == [os.path.basename(fm.marker_path(str(markers), x)) for x in warmup_xs], ran
  assert client.y(WARM, 5.0, version=2) == (2, [[5.0]])
  assert os.path.exists(fm.marker_path(str(markers), 5))


def test_a_failing_warmup_fails_the_load(swap_server, client):
  serving_version, _ = client.y(WARM, 1.0)

  def build(export_dir: str) -> None:
    fm.build_half_plus_two(export_dir, 10)
    # TF Serving fails the load when a warmup request fails; this one names no real input.
    request = predict_pb2.PredictRequest()
    request.inputs['not_an_input'].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
    fm.write_warmup_requests(export_dir, [request])

  folder = fm.push_version(os.path.join(swap_server.model_root, WARM), 10, build)
  try:
    _wait_for(lambda: 10 in _status(client.models, WARM) and
              _status(client.models, WARM)[10].state == END, 30,
              lambda: f'version 10 to end in error; status: {_status(client.models, WARM)}')
    assert _status(client.models, WARM)[10].status.error_code != 0
    assert client.y(WARM, 1.0)[0] == serving_version
  finally:
    # Version 10 would outrank any later version of WARM that another test pushes.
    shutil.rmtree(folder)


@pytest.fixture(scope='module')
def batching_server(server_factory, tmp_path_factory):
  """A server with batching on, holding `batched` (half_plus_two) and `sleepy` (3 s per call).

  The SIGTERM test ends this server, so it is the last test of this file.
  """
  root = tmp_path_factory.mktemp('batching-models')
  fm.push_version(str(root / 'batched'), 1, _half_plus_two(1))
  fm.push_version(str(root / 'sleepy'), 1, lambda d: fm.build_sleepy(d, 3.0))
  config_path = str(root / fm.CONFIG_FILE)
  fm.write_config(config_path, fm.server_config(
      [fm.model_config('batched', str(root / 'batched')),
       fm.model_config('sleepy', str(root / 'sleepy'))]))
  parameters = root / 'batching.config'
  parameters.write_text('max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\n'
                        'num_batch_threads { value: 2 }\n')
  return server_factory.start(
      ['--model_config_file', config_path, *POLL, '--enable_batching',
       '--batching_parameters_file', str(parameters)], {'batched': [1], 'sleepy': [1]},
      name='batching')


def test_batching_gives_each_request_its_own_answer(batching_server):
  server = batching_server
  threads, per_thread = 8, 150
  problems: List[str] = []
  lock = threading.Lock()

  def work(worker: int) -> None:
    connection = Client(server.grpc_target)
    try:
      for i in range(per_thread):
        # Distinct values per request and 1 to 4 rows, so a mixed-up split shows.
        rows = [[worker * 1000 + i + k / 4] for k in range(1 + i % 4)]
        try:
          response = connection.predict.Predict(_request('batched', rows), timeout=30)
          y = tf.make_ndarray(response.outputs['y']).tolist()
          squared = tf.make_ndarray(response.outputs['x_squared']).tolist()
        except grpc.RpcError as error:
          with lock:
            problems.append(f'{error.code().name}: {error.details()}')
          continue
        expected_y = [[fm.half_plus_two_y(1, r[0])] for r in rows]
        # float32 squares of float32 values: the exact double product, rounded once.
        expected_squared = [[float(np.float32(r[0] * r[0]))] for r in rows]
        if y != expected_y or squared != expected_squared:
          with lock:
            problems.append(f'rows {rows}: y {y}, x_squared {squared}')
    finally:
      connection.close()

  workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for worker in workers:
    worker.start()
  for worker in workers:
    worker.join(timeout=300)
  assert not any(worker.is_alive() for worker in workers), 'clients still running after 300 s'
  assert not problems, f'{len(problems)} bad answers, e.g. {problems[:5]}'


def _refused_at(target: str, timeout_s: float) -> Optional[float]:
  """When a new connection's GetModelStatus is first refused, polling each 50 ms.

  A server that is shutting down refuses a new connection with UNAVAILABLE, and cancels an RPC
  whose connection it accepted just before it stopped listening (CANCELLED; seen in CI).
  """
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    probe = Client(target)
    try:
      _status(probe.models, 'sleepy')
    except grpc.RpcError as error:
      if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return time.monotonic()
      raise
    finally:
      probe.close()
    time.sleep(0.05)
  return None


def test_sigterm_drains_in_flight_requests_and_exits_zero(batching_server):
  server = batching_server
  in_flight = 4
  results: List = [None] * in_flight
  finished_at: List[float] = [0.0] * in_flight

  def call(i: int) -> None:
    connection = Client(server.grpc_target)
    try:
      results[i] = connection.y('sleepy', float(i))
    except grpc.RpcError as error:
      results[i] = f'{error.code().name}: {error.details()}'
    finally:
      finished_at[i] = time.monotonic()
      connection.close()

  callers = [threading.Thread(target=call, args=(i,)) for i in range(in_flight)]
  for caller in callers:
    caller.start()
  time.sleep(0.5)  # each request sleeps 3 s in the model, so all are in flight now
  sent = time.monotonic()
  server.process.popen.send_signal(signal.SIGTERM)
  refused = _refused_at(server.grpc_target, timeout_s=10)
  for caller in callers:
    caller.join(timeout=60)
  code = server.process.popen.wait(timeout=60)

  assert results == [(1, [[float(i)]]) for i in range(in_flight)], server.describe()
  assert min(finished_at) > sent, 'the requests finished before SIGTERM: nothing was in flight'
  assert refused is not None, 'new connections were still accepted 10 s after SIGTERM'
  assert refused < min(finished_at), (
      f'new connections were refused only {refused - sent:.2f} s after SIGTERM, after the '
      f'in-flight requests had finished ({min(finished_at) - sent:.2f} s): not while draining')
  assert code == 0, server.describe()
