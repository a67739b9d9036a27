"""A server with batching on answers each request with its own rows, and drains on SIGTERM.

Like test_reliability.py, these start ganpipe's own server (never TF_SERVING_TARGET): they end
its process. Semantics expected are TF Serving's.
"""

import signal
import threading
import time
from typing import List, Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tests.serving import fixture_models as fm
from tests.serving.stubs import POLL, Client, half_plus_two, model_status, predict_request

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def batching_server(server_factory, tmp_path_factory):
  """A server with batching on, holding `batched` (half_plus_two) and `sleepy` (3 s per call).

  The SIGTERM test ends this server, so it is the last test of this file.
  """
  root = tmp_path_factory.mktemp('batching-models')
  fm.push_version(str(root / 'batched'), 1, half_plus_two(1))
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
          response = connection.predict.Predict(predict_request('batched', rows), timeout=30)
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
      model_status(probe.models, 'sleepy')
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
