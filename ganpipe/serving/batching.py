"""Server-side batching of concurrent requests, with TF Serving's batching parameters."""

import asyncio
import concurrent.futures
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import grpc
import numpy as np

from ganpipe.serving import config as config_lib
from ganpipe.serving import errors
from ganpipe.serving import servable as servable_lib

Inputs = Mapping[str, np.ndarray]


# TF Serving's words for a request whose deadline passed before its batch ran (batching_session).
QUEUE_TIMEOUT_MESSAGE = 'Run() timeout exceeded while waiting in batching queue'


def call_by(deadline: Optional[float], signature: servable_lib.Signature,
            inputs: Inputs) -> Dict[str, np.ndarray]:
  """Runs `signature` unless `deadline` (time.monotonic() seconds; None: none) has passed.

  A request that waited for a thread past its deadline has no caller left to answer: its client
  has had DEADLINE_EXCEEDED already, so its model time would only delay the requests behind it.
  """
  if deadline is not None and time.monotonic() >= deadline:
    raise errors.ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                              'the request waited past its deadline for a thread to run it')
  return signature(inputs)


class _Task:
  """One request's rows, and the future its caller waits on: a thread's, or an event loop's."""
  __slots__ = ('inputs', 'size', 'future', 'loop', 'enqueued', 'deadline')

  def __init__(self, inputs: Inputs, loop: Optional[asyncio.AbstractEventLoop] = None,
               deadline: Optional[float] = None):
    self.inputs = inputs
    self.size = next(iter(inputs.values())).shape[0]
    self.loop = loop
    self.future = loop.create_future() if loop is not None else concurrent.futures.Future()
    self.enqueued = time.monotonic()
    self.deadline = deadline

  def abandoned(self, now: float) -> bool:
    """Whether nobody waits for this task's answer: its deadline passed, or it was cancelled."""
    # An event loop's future is only read here, from another thread: at worst a request that
    # was cancelled a moment ago still runs.
    return (self.deadline is not None and now >= self.deadline) or self.future.done()


class BatchScheduler:
  """Groups requests to the same signature of the same version into one call.

  A batch runs when it reaches `max_batch_size` rows or its oldest request has waited
  `batch_timeout_micros`. `num_batch_threads` batches run at once. Requests whose inputs differ
  outside dimension 0 go to separate batches, and signatures without a batch dimension run alone.

  A request may carry a deadline. One still queued when its deadline passes, or whose caller was
  cancelled, is left out of its batch: it gets RESOURCE_EXHAUSTED with TF Serving's message, and
  the model never sees its rows. (TF Serving's batching session drops a batch only when all of
  its requests are past their deadlines; past-deadline rows are model time nobody waits for.)
  """

  def __init__(self, parameters: config_lib.BatchingParameters,
               on_batch: Optional[Callable[[str, List[float]], None]] = None):
    """`on_batch(thread_pool_name, waits)` hears of each model call a batch makes, with the
    seconds each of its requests waited in the queue."""
    self._params = parameters
    self._on_batch = on_batch
    self._timeout = parameters.batch_timeout_micros / 1e6
    self._queues: Dict[Tuple, List[_Task]] = {}
    self._rows: Dict[Tuple, int] = {}
    self._signatures: Dict[Tuple, servable_lib.Signature] = {}
    self._cond = threading.Condition()
    self._stopping = False
    self._threads = [threading.Thread(target=self._work, name=f'batch-{i}', daemon=True)
                     for i in range(parameters.num_batch_threads)]
    for thread in self._threads:
      thread.start()

  def accepts(self, signature: servable_lib.Signature, inputs: Inputs) -> bool:
    """Whether `inputs` can join a batch; other requests run on their own."""
    if not signature.batchable or any(value.ndim == 0 for value in inputs.values()):
      return False  # A scalar has no rows to join others' (TF Serving's ops decide its fate).
    sizes = {value.shape[0] for value in inputs.values()}
    return len(sizes) == 1 and next(iter(sizes)) <= self._params.max_batch_size

  def run(self, signature: servable_lib.Signature, inputs: Inputs,
          deadline: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Runs `signature` on `inputs`, batched with concurrent requests where possible.

    `deadline`: time.monotonic() seconds after which nobody waits for the answer; None: never.
    """
    if not self.accepts(signature, inputs):
      return call_by(deadline, signature, inputs)
    return self._enqueue(signature, _Task(inputs, deadline=deadline)).future.result()

  async def run_async(self, signature: servable_lib.Signature, inputs: Inputs,
                      executor: concurrent.futures.Executor,
                      deadline: Optional[float] = None) -> Dict[str, np.ndarray]:
    """`run` for a coroutine on the running loop; a request that cannot batch runs on `executor`.

    The batch thread settles every request of a batch from one loop in one callback, so the loop
    wakes once per batch, not once per request.
    """
    loop = asyncio.get_running_loop()
    if not self.accepts(signature, inputs):
      return await loop.run_in_executor(executor, call_by, deadline, signature, inputs)
    return await self._enqueue(signature, _Task(inputs, loop, deadline)).future

  def _enqueue(self, signature: servable_lib.Signature, task: _Task) -> _Task:
    key = (id(signature),) + tuple(sorted((k, v.shape[1:]) for k, v in task.inputs.items()))
    with self._cond:
      if self._stopping:
        raise errors.ServingError(grpc.StatusCode.UNAVAILABLE, 'the server is shutting down')
      queue = self._queues.setdefault(key, [])
      if len(queue) >= self._params.max_enqueued_batches * self._params.max_batch_size:
        raise errors.ServingError(grpc.StatusCode.UNAVAILABLE,
                                  'The batch scheduling queue to which this task was submitted '
                                  'is full; retry later')
      queue.append(task)
      rows = self._rows[key] = self._rows.get(key, 0) + task.size
      self._signatures[key] = signature
      # A batch thread needs waking only to start the new batch's timer or to run a full
      # batch; waking one for every request costs more than the model call saves.
      if len(queue) == 1 or rows >= self._params.max_batch_size:
        self._cond.notify()
    return task

  def _padded_size(self, rows: int) -> int:
    """The smallest allowed batch size that holds `rows`; `rows` when any size is allowed."""
    for size in self._params.allowed_batch_sizes:
      if size >= rows:
        return size
    return rows

  def stop(self) -> None:
    """Runs what is queued, then stops the batch threads."""
    with self._cond:
      self._stopping = True
      self._cond.notify_all()
    for thread in self._threads:
      thread.join()

  def _work(self) -> None:
    while True:
      with self._cond:
        batch = self._next_batch()
        while batch is None:
          if self._stopping and not any(self._queues.values()):
            return
          self._cond.wait(self._wait_time())
          batch = self._next_batch()
      signature, tasks = batch
      self._run(signature, tasks)

  def _wait_time(self):
    oldest = [queue[0].enqueued for queue in self._queues.values() if queue]
    if not oldest:
      return None
    return max(0.0, min(oldest) + self._timeout - time.monotonic())

  def _next_batch(self):
    """Takes a full or timed-out batch off a queue; the caller holds the lock."""
    now = time.monotonic()
    for key, queue in self._queues.items():
      if not queue:
        continue
      if (self._rows[key] >= self._params.max_batch_size or
          now - queue[0].enqueued >= self._timeout or self._stopping):
        tasks, total = [], 0
        while queue and total + queue[0].size <= self._params.max_batch_size:
          total += queue[0].size
          tasks.append(queue.pop(0))
        self._rows[key] -= total
        if queue:
          self._cond.notify()  # What is left starts a new batch, with its own timer.
        return self._signatures[key], tasks
    return None

  def _run(self, signature: servable_lib.Signature, tasks: List[_Task]) -> None:
    now = time.monotonic()
    dropped = [task for task in tasks if task.abandoned(now)]
    if dropped:
      expired = errors.ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT_MESSAGE)
      _settle(dropped, [(None, expired)] * len(dropped))  # A cancelled one ignores it.
      tasks = [task for task in tasks if task not in dropped]
      if not tasks:
        return
    if self._on_batch is not None:
      self._on_batch(self._params.thread_pool_name, [now - task.enqueued for task in tasks])
    try:
      total = sum(task.size for task in tasks)
      padded = self._padded_size(total)
      if len(tasks) == 1 and padded == total:
        outcomes = [(signature(tasks[0].inputs), None)]
      else:
        merged = {}
        for key, first in tasks[0].inputs.items():
          parts = [task.inputs[key] for task in tasks]
          if padded > total:  # Up to an allowed batch size, with copies of the first row.
            parts.append(np.repeat(first[:1], padded - total, axis=0))
          merged[key] = np.concatenate(parts)
        outputs = signature(merged)
        for key, value in outputs.items():
          if value.ndim == 0 or value.shape[0] != padded:
            raise errors.ServingError(
                grpc.StatusCode.INTERNAL, f'batched output {key!r} of signature '
                f'{signature.name!r} has {value.shape[0] if value.ndim else 0} rows for {padded} '
                'inputs')
        outcomes, start = [], 0
        for task in tasks:
          end = start + task.size
          outcomes.append(({key: value[start:end] for key, value in outputs.items()}, None))
          start = end
    except Exception as e:  # pylint: disable=broad-except
      # Every waiting request must hear about the failure, whatever it was.
      outcomes = [(None, e)] * len(tasks)
    _settle(tasks, outcomes)


def _settle(tasks: List[_Task], outcomes: List[Tuple]) -> None:
  """Hands each task its outcome: directly to threads, one callback per event loop."""
  by_loop: Dict[asyncio.AbstractEventLoop, List] = {}
  for task, outcome in zip(tasks, outcomes):
    if task.loop is None:
      _set(task.future, outcome)
    else:
      by_loop.setdefault(task.loop, []).append((task.future, outcome))
  for loop, settled in by_loop.items():
    try:
      loop.call_soon_threadsafe(_set_all, settled)
    except RuntimeError:  # The loop closed: its server stopped, and nobody waits any more.
      pass


def _set_all(settled: List[Tuple]) -> None:
  for future, outcome in settled:
    _set(future, outcome)


def _set(future, outcome: Tuple) -> None:
  if future.done():  # An event loop's caller may have been cancelled meanwhile.
    return
  result, error = outcome
  if error is not None:
    future.set_exception(error)
  else:
    future.set_result(result)
