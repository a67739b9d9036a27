"""The batch scheduler on its own: who runs together, when, and what each request gets back."""

import asyncio
import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest

from ganpipe.serving import batching
from ganpipe.serving import config as config_lib
from ganpipe.serving import errors


class RecordingSignature:
  """Doubles its input and records the batch sizes it was called with."""

  name = 'double'
  batchable = True

  def __init__(self, hold: threading.Event = None):
    self.calls = []
    self._hold = hold

  def __call__(self, inputs):
    if self._hold is not None:
      self._hold.wait(10)
    self.calls.append(len(inputs['x']))
    return {'y': inputs['x'] * 2}


def _scheduler(**parameters):
  return batching.BatchScheduler(config_lib.BatchingParameters(**parameters))


def _concurrently(scheduler, signature, values):
  answers = [None] * len(values)

  def call(i):
    answers[i] = scheduler.run(signature, {'x': np.array([[values[i]]], dtype=np.float32)})

  threads = [threading.Thread(target=call, args=(i,)) for i in range(len(values))]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(10)
  return answers


def test_concurrent_requests_share_a_call_and_each_gets_its_own_rows():
  scheduler = _scheduler(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1)
  signature = RecordingSignature()
  try:
    answers = _concurrently(scheduler, signature, list(range(8)))
  finally:
    scheduler.stop()
  assert [float(a['y'][0, 0]) for a in answers] == [2.0 * i for i in range(8)]
  # Eight rows fill a batch of 8 at once: one call, well before the 200 ms timeout.
  assert signature.calls == [8]


def test_a_lone_request_runs_when_its_timeout_passes():
  scheduler = _scheduler(max_batch_size=32, batch_timeout_micros=50_000, num_batch_threads=1)
  signature = RecordingSignature()
  try:
    started = time.monotonic()
    answer = scheduler.run(signature, {'x': np.array([[3.0]], dtype=np.float32)})
    waited = time.monotonic() - started
  finally:
    scheduler.stop()
  assert float(answer['y'][0, 0]) == 6.0
  assert signature.calls == [1]
  assert 0.05 <= waited < 5


def test_rows_beyond_a_full_batch_run_in_the_next_batch():
  hold = threading.Event()
  scheduler = _scheduler(max_batch_size=4, batch_timeout_micros=20_000, num_batch_threads=1)
  signature = RecordingSignature(hold)
  try:
    releaser = threading.Timer(0.3, hold.set)
    releaser.start()
    # Ten requests while the one batch thread is held: batches of 4, 4, then the 2 left over.
    answers = _concurrently(scheduler, signature, list(range(10)))
  finally:
    hold.set()
    scheduler.stop()
  assert sorted(float(a['y'][0, 0]) for a in answers) == [2.0 * i for i in range(10)]
  assert sum(signature.calls) == 10 and max(signature.calls) <= 4


def test_a_failed_batch_fails_every_request_in_it():

  class Broken(RecordingSignature):

    def __call__(self, inputs):
      raise errors.ServingError(grpc.StatusCode.INTERNAL, 'the model broke')

  scheduler = _scheduler(max_batch_size=2, batch_timeout_micros=200_000, num_batch_threads=1)
  failures = []

  def call():
    try:
      scheduler.run(Broken(), {'x': np.zeros((1, 1), np.float32)})
    except errors.ServingError as e:
      failures.append(e.message)

  threads = [threading.Thread(target=call) for _ in range(2)]
  try:
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join(10)
  finally:
    scheduler.stop()
  assert failures == ['the model broke'] * 2


def test_a_stopped_scheduler_refuses_new_requests():
  scheduler = _scheduler(num_batch_threads=1)
  scheduler.stop()
  with pytest.raises(errors.ServingError, match='shutting down') as raised:
    scheduler.run(RecordingSignature(), {'x': np.zeros((1, 1), np.float32)})
  assert raised.value.code == grpc.StatusCode.UNAVAILABLE


# --- from an event loop, as the gRPC server calls it -------------------------------------------
class Unbatchable(RecordingSignature):
  batchable = False


def test_coroutines_on_one_loop_share_a_call_and_each_gets_its_own_rows():
  scheduler = _scheduler(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1)
  signature = RecordingSignature()

  async def main():
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
      return await asyncio.gather(*[
          scheduler.run_async(signature, {'x': np.array([[float(i)]], np.float32)}, executor)
          for i in range(8)])

  try:
    answers = asyncio.run(main())
  finally:
    scheduler.stop()
  assert [float(a['y'][0, 0]) for a in answers] == [2.0 * i for i in range(8)]
  assert signature.calls == [8]


def test_a_coroutine_whose_request_cannot_batch_runs_on_the_executor():
  scheduler = _scheduler(max_batch_size=2, num_batch_threads=1)
  threads = []

  class Recording(Unbatchable):

    def __call__(self, inputs):
      threads.append(threading.current_thread().name)
      return super().__call__(inputs)

  async def main():
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='model') as executor:
      # One unbatchable signature, and a request larger than a batch.
      first = await scheduler.run_async(Recording(), {'x': np.ones((1, 1), np.float32)}, executor)
      second = await scheduler.run_async(RecordingSignature(), {'x': np.ones((3, 1), np.float32)},
                                         executor)
      return first, second

  try:
    first, second = asyncio.run(main())
  finally:
    scheduler.stop()
  assert float(first['y'][0, 0]) == 2.0 and second['y'].shape == (3, 1)
  assert threads and threads[0].startswith('model')


def test_a_failed_batch_fails_every_coroutine_in_it_and_a_cancelled_one_is_left_out():

  class Broken(RecordingSignature):

    def __call__(self, inputs):
      super().__call__(inputs)
      raise errors.ServingError(grpc.StatusCode.INTERNAL, 'the model broke')

  # Three requests in a batch of up to 4: it runs when its 200 ms timeout passes.
  scheduler = _scheduler(max_batch_size=4, batch_timeout_micros=200_000, num_batch_threads=1)
  signature = Broken()

  async def main():
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
      calls = [asyncio.ensure_future(scheduler.run_async(
          signature, {'x': np.zeros((1, 1), np.float32)}, executor)) for _ in range(3)]
      await asyncio.sleep(0.01)
      calls[0].cancel()  # Its caller went away while the batch waited to fill.
      return await asyncio.gather(*calls, return_exceptions=True)

  try:
    outcomes = asyncio.run(main())
  finally:
    scheduler.stop()
  assert isinstance(outcomes[0], asyncio.CancelledError)
  assert [o.message for o in outcomes[1:]] == ['the model broke'] * 2
  assert signature.calls == [2]  # Nobody waited for the cancelled request's rows.


# --- deadlines ---------------------------------------------------------------------------------
class GatedSignature(RecordingSignature):
  """Records the first value of each call; the first call waits until `release` is set."""

  def __init__(self):
    super().__init__()
    self.entered = threading.Event()
    self.release = threading.Event()

  def __call__(self, inputs):
    if not self.entered.is_set():
      self.entered.set()
      self.release.wait(10)
    self.calls.append([float(v) for v in inputs['x'][:, 0]])
    return {'y': inputs['x'] * 2}


def _row(value):
  return {'x': np.array([[value]], np.float32)}


def test_a_request_whose_deadline_passes_in_the_queue_is_left_out_of_its_batch():
  scheduler = _scheduler(max_batch_size=4, batch_timeout_micros=10_000, num_batch_threads=1)
  signature = GatedSignature()
  outcomes = {}

  def call(value, deadline=None):
    try:
      outcomes[value] = float(scheduler.run(signature, _row(value), deadline)['y'][0, 0])
    except errors.ServingError as e:
      outcomes[value] = e

  first = threading.Thread(target=call, args=(1.0,))
  first.start()
  try:
    assert signature.entered.wait(10)  # The one batch thread is busy with the first request.
    # Two more queue behind it: one with no deadline, one whose deadline passes while it waits.
    waiting = [threading.Thread(target=call, args=(2.0,)),
               threading.Thread(target=call, args=(3.0, time.monotonic() + 0.05))]
    for thread in waiting:
      thread.start()
    time.sleep(0.3)
    signature.release.set()
    for thread in [first] + waiting:
      thread.join(10)
  finally:
    signature.release.set()
    scheduler.stop()
  assert outcomes[1.0] == 2.0 and outcomes[2.0] == 4.0
  expired = outcomes[3.0]
  assert isinstance(expired, errors.ServingError)
  assert expired.code == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert expired.message == batching.QUEUE_TIMEOUT_MESSAGE
  assert expired.http_status == 429  # As TF Serving's REST API: a client may retry later.
  assert signature.calls == [[1.0], [2.0]]  # The model never saw the expired row.


def test_a_request_with_time_left_runs_with_its_batch():
  scheduler = _scheduler(max_batch_size=2, batch_timeout_micros=10_000, num_batch_threads=1)
  signature = RecordingSignature()
  try:
    answer = scheduler.run(signature, _row(5.0), time.monotonic() + 10)
  finally:
    scheduler.stop()
  assert float(answer['y'][0, 0]) == 10.0 and signature.calls == [1]


def test_a_coroutine_past_its_deadline_in_the_queue_gets_resource_exhausted():
  scheduler = _scheduler(max_batch_size=4, batch_timeout_micros=100_000, num_batch_threads=1)
  signature = RecordingSignature()

  async def main():
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
      # The batch waits 100 ms to fill; the second request's deadline is 20 ms away.
      return await asyncio.gather(
          scheduler.run_async(signature, _row(1.0), executor),
          scheduler.run_async(signature, _row(2.0), executor, time.monotonic() + 0.02),
          return_exceptions=True)

  try:
    kept, expired = asyncio.run(main())
  finally:
    scheduler.stop()
  assert float(kept['y'][0, 0]) == 2.0
  assert isinstance(expired, errors.ServingError)
  assert expired.code == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert signature.calls == [1]


@pytest.mark.parametrize('batched', [False, True], ids=['unbatchable', 'larger-than-a-batch'])
def test_a_request_that_runs_alone_is_not_run_past_its_deadline(batched):
  scheduler = _scheduler(max_batch_size=1, num_batch_threads=1)
  signature = RecordingSignature() if batched else Unbatchable()
  inputs = {'x': np.ones((2 if batched else 1, 1), np.float32)}

  async def main():
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
      return await scheduler.run_async(signature, inputs, executor, time.monotonic() - 1)

  try:
    with pytest.raises(errors.ServingError, match='deadline') as raised:
      asyncio.run(main())
    with pytest.raises(errors.ServingError, match='deadline'):
      scheduler.run(signature, inputs, time.monotonic() - 1)
  finally:
    scheduler.stop()
  assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
  assert raised.value.http_status == 504
  assert signature.calls == []


# --- allowed_batch_sizes -----------------------------------------------------------------------
def test_batches_are_padded_to_the_next_allowed_size_and_the_padding_dropped():
  scheduler = _scheduler(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1,
                         allowed_batch_sizes=(2, 4, 8))
  signature = RecordingSignature()
  try:
    answers = _concurrently(scheduler, signature, [1.0, 2.0, 3.0])
    alone = scheduler.run(signature, _row(5.0))
  finally:
    scheduler.stop()
  assert sorted(float(a['y'][0, 0]) for a in answers) == [2.0, 4.0, 6.0]
  assert all(a['y'].shape == (1, 1) for a in answers) and alone['y'].tolist() == [[10.0]]
  # Three rows ran as a batch of 4 (or, had they split, of 2s); one row as a batch of 2.
  assert all(size in (2, 4) for size in signature.calls) and signature.calls[-1] == 2
