"""Load for the serving benchmark: server subprocesses, a no-op PredictionService, and clients.

`benchmarks/serving_latency.py` measures with these. The no-op server runs as this script:

  .venv/bin/python benchmarks/serving_load.py --response_file RESPONSE.pb

and answers every Predict with the serialized PredictResponse in RESPONSE.pb.
"""

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Sequence

import grpc
import numpy as np
import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICT = '/tensorflow.serving.PredictionService/Predict'
GRPC_THREADS = 32  # The server's --grpc_max_threads default; the no-op server uses the same.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
READY_LINE = re.compile(r'Running gRPC \S+ at (\S+):(\d+) \.\.\.')
REST_LINE = re.compile(r'Exporting HTTP/REST API at:(\S+):(\d+) \.\.\.')


# --- servers ------------------------------------------------------------------------------------
class Server:
  """A server subprocess, ready once it prints its `Running gRPC ... at HOST:PORT ...` line
  (and its REST one, when it has a REST port)."""

  def __init__(self, name: str, command: List[str], workdir: str, timeout: float = 600.0,
               cwd: str = REPO):
    self.name = name
    self.log_path = os.path.join(workdir, f'{name}.log')
    with open(self.log_path, 'w') as log:
      self.process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
      with open(self.log_path, errors='replace') as log:
        text = log.read()
      match, rest = READY_LINE.search(text), REST_LINE.search(text)
      if match and (rest or '--rest_api_port' not in command):  # REST is printed second.
        self.target = f'{match.group(1)}:{match.group(2)}'
        self.rest_target = f'{rest.group(1)}:{rest.group(2)}' if rest else None
        break
      if self.process.poll() is not None or time.monotonic() > deadline:
        self.stop()
        with open(self.log_path, errors='replace') as log:
          tail = log.read()[-3000:]
        raise RuntimeError(f'{name} did not start (exit {self.process.returncode}); '
                           f'log {self.log_path}:\n{tail}')
      time.sleep(0.1)
    self.psutil = psutil.Process(self.process.pid)

  def cpu_seconds(self) -> float:
    times = self.psutil.cpu_times()
    return times.user + times.system

  def stop(self) -> None:
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGTERM)
      try:
        self.process.wait(60)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()


def noop_server(workdir: str, response: bytes) -> Server:
  path = os.path.join(workdir, 'noop_response.pb')
  with open(path, 'wb') as f:
    f.write(response)
  return Server('noop_server', [sys.executable, os.path.abspath(__file__), '--response_file',
                                path], workdir)


def run_noop_server(response_file: str) -> int:
  """A PredictionService whose Predict returns a fixed response: gRPC's cost and nothing else."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  # pylint: enable=import-outside-toplevel

  with open(response_file, 'rb') as f:
    response = predict_pb2.PredictResponse.FromString(f.read())

  class NoopPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

    async def Predict(self, request, context):  # pylint: disable=invalid-name
      return response

  return serve_prediction_service(NoopPredictionService())


def serve_prediction_service(servicer) -> int:
  """Serves `servicer` as a PredictionService on 127.0.0.1 until SIGTERM or SIGINT.

  The same stack as serving/server.py: grpc.aio, its thread pool, message limits, and a coroutine
  Predict. The port is a free one, printed in the line Server waits for.
  """
  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  # pylint: enable=import-outside-toplevel

  async def serve() -> None:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=GRPC_THREADS,
                                                     thread_name_prefix='grpc')
    server = grpc.aio.server(
        migration_thread_pool=executor,
        options=[('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
                 ('grpc.max_send_message_length', MAX_MESSAGE_BYTES)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port('127.0.0.1:0')
    await server.start()
    print(f'Running gRPC {type(servicer).__name__} at 127.0.0.1:{port} ...', flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
      asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(5)

  asyncio.run(serve())
  return 0


# --- latency ------------------------------------------------------------------------------------
def open_channel(target: str) -> grpc.Channel:
  # A local subchannel pool gives every client its own connection, as separate clients have.
  channel = grpc.insecure_channel(target, options=[
      ('grpc.use_local_subchannel_pool', 1),
      ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
      ('grpc.max_send_message_length', MAX_MESSAGE_BYTES)])
  grpc.channel_ready_future(channel).result(timeout=60)
  return channel


def summary(seconds: Sequence[float]) -> Dict[str, float]:
  ms = np.asarray(seconds) * 1e3
  if not len(ms):  # pylint: disable=g-explicit-length-test
    return {'count': 0}
  return {'count': int(len(ms)), 'p50_ms': round(float(np.percentile(ms, 50)), 3),
          'p90_ms': round(float(np.percentile(ms, 90)), 3),
          'p99_ms': round(float(np.percentile(ms, 99)), 3),
          'mean_ms': round(float(ms.mean()), 3), 'max_ms': round(float(ms.max()), 3)}


def sequential_latency(call, items: Sequence, count: int, warmup: int) -> Dict[str, float]:
  for i in range(warmup):
    call(items[i % len(items)])
  seconds = []
  for i in range(count):
    item = items[i % len(items)]
    started = time.perf_counter()
    call(item)
    seconds.append(time.perf_counter() - started)
  return summary(seconds)


def grpc_latency(target: str, requests: Sequence[bytes], count: int,
                 warmup: int) -> Dict[str, float]:
  channel = open_channel(target)
  predict = channel.unary_unary(PREDICT)  # bytes in, bytes out: no client-side proto work
  try:
    return sequential_latency(lambda request: predict(request, timeout=30), requests, count,
                              warmup)
  finally:
    channel.close()


# --- throughput ---------------------------------------------------------------------------------
def _load_worker(target: str, requests: List[bytes], clients: int, offset: int, ready, start,
                 start_time, warmup: float, duration: float, results) -> None:
  """One client process: `clients` threads, each with its own channel, calling back to back."""
  try:
    channels = [open_channel(target) for _ in range(clients)]
  except grpc.FutureTimeoutError:
    results.put({'error': f'cannot connect to {target}'})
    ready.put(1)
    return
  ready.put(1)
  start.wait()
  begin = start_time.value + warmup
  end = begin + duration
  latencies: List[List[float]] = [[] for _ in range(clients)]
  errors: Dict[str, int] = {}
  lock = threading.Lock()

  def client(index: int) -> None:
    predict = channels[index].unary_unary(PREDICT)
    mine = latencies[index]
    i = offset + index
    while True:
      sent = time.monotonic()
      if sent >= end:
        return
      try:
        predict(requests[i % len(requests)], timeout=30)
      except grpc.RpcError as e:
        if begin <= sent:
          with lock:
            errors[e.code().name] = errors.get(e.code().name, 0) + 1
        continue
      done = time.monotonic()
      # A request counts when it completes inside the window.
      if begin <= done <= end:
        mine.append(done - sent)
      i += 1

  threads = [threading.Thread(target=client, args=(index,), daemon=True)
             for index in range(clients)]
  for thread in threads:
    thread.start()
  time.sleep(max(0.0, begin - time.monotonic()))
  cpu_begin = time.process_time()
  time.sleep(max(0.0, end - time.monotonic()))
  cpu_end = time.process_time()
  for thread in threads:
    thread.join()
  for channel in channels:
    channel.close()
  results.put({'latencies': [value for mine in latencies for value in mine], 'errors': errors,
               'cpu_seconds': cpu_end - cpu_begin})


def _system_busy_seconds() -> float:
  times = psutil.cpu_times()
  return sum(times) - times.idle - getattr(times, 'iowait', 0.0)


def throughput(server: Server, requests: List[bytes], concurrency: int, processes: int,
               warmup: float, duration: float) -> Dict:
  """Requests/s of `concurrency` clients calling back to back for `duration` seconds."""
  context = multiprocessing.get_context('spawn')  # fork after TensorFlow and gRPC is unsafe
  ready, results = context.Queue(), context.Queue()
  start, start_time = context.Event(), context.Value('d', 0.0)
  processes = min(processes, concurrency)
  shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
  workers = [context.Process(target=_load_worker, daemon=True, args=(
      server.target, requests, share, sum(shares[:i]), ready, start, start_time, warmup,
      duration, results)) for i, share in enumerate(shares)]
  for worker in workers:
    worker.start()
  for _ in workers:
    ready.get(timeout=120)
  start_time.value = time.monotonic() + 0.05
  start.set()
  begin = start_time.value + warmup
  time.sleep(max(0.0, begin - time.monotonic()))
  server_cpu, system_busy = server.cpu_seconds(), _system_busy_seconds()
  time.sleep(max(0.0, begin + duration - time.monotonic()))
  server_cpu, system_busy = (server.cpu_seconds() - server_cpu,
                             _system_busy_seconds() - system_busy)
  outcomes = [results.get(timeout=120) for _ in workers]
  for worker in workers:
    worker.join(30)
  failed = [outcome['error'] for outcome in outcomes if 'error' in outcome]
  if failed:
    raise RuntimeError(f'{server.name}: {failed[0]}')
  latencies = [value for outcome in outcomes for value in outcome['latencies']]
  errors: Dict[str, int] = {}
  for outcome in outcomes:
    for code, count in outcome['errors'].items():
      errors[code] = errors.get(code, 0) + count
  client_cpu = sum(outcome['cpu_seconds'] for outcome in outcomes)
  return {
      'clients': concurrency, 'client_processes': processes, 'threads_per_process': shares,
      'seconds': duration, 'requests': len(latencies),
      'requests_per_second': round(len(latencies) / duration, 1),
      # Every request carries one image.
      'images_per_second': round(len(latencies) / duration, 1),
      'errors': errors, 'latency': summary(latencies),
      # CPU use in cores over the window: what the server, the clients and everything else on the
      # machine (this benchmark's idle parent included) took of the CPUs.
      'server_cpu_cores': round(server_cpu / duration, 2),
      'client_cpu_cores': round(client_cpu / duration, 2),
      'other_cpu_cores': round(max(0.0, system_busy - server_cpu - client_cpu) / duration, 2),
      # Less sensitive to other work on the machine than requests/s: what one core buys.
      'requests_per_server_cpu_second': (round(len(latencies) / server_cpu, 1) if server_cpu
                                         else None),
  }


def interleaved(servers: Sequence[Server], measure: Callable[[Server], Dict],
                rounds: int) -> List[List[Dict]]:
  """`rounds` measurements of each server, taken in turn, the order reversed each round.

  The servers are all up at once, idle while another is measured, so a burst of other work on the
  machine lands on every server of a round rather than on one whole run: the per-round ratios
  between servers are steadier than the ratio of two separate runs.
  """
  results: List[List[Dict]] = [[] for _ in servers]
  for number in range(rounds):
    order = list(range(len(servers)))
    for index in (order if number % 2 == 0 else order[::-1]):
      results[index].append(measure(servers[index]))
  return results


def main() -> int:
  parser = argparse.ArgumentParser(description='the no-op PredictionService')
  parser.add_argument('--response_file', required=True,
                      help='a serialized PredictResponse, the answer to every Predict')
  return run_noop_server(parser.parse_args().response_file)


if __name__ == '__main__':
  sys.exit(main())
