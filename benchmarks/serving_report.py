"""The Markdown report of benchmarks/serving_latency.py, from the results it writes as JSON."""

from typing import Dict, List, Optional

from benchmarks.serving_goals import NATIVE


def markdown(results: Dict) -> str:
  machine, settings = results['machine'], results['settings']
  lines = [
      f'# Model server latency and throughput ({machine["cpus"]} CPUs'
      f'{", quick run" if settings["quick"] else ""})', '',
      f'Model `{results["model_dir"]}`; Python {machine["python"]}, TensorFlow '
      f'{machine["tensorflow"]}, grpcio {machine["grpcio"]}; load average (1, 5, 15 min) '
      f'{machine["load_average_before"]} before the run, {machine["load_average_after"]} '
      'after.', '',
      f'## Batch-1 latency, {settings["latency_calls"]} sequential calls after '
      f'{settings["latency_warmup_calls"]} warmup calls', '',
      '| path | p50 ms | p90 ms | p99 ms | mean ms | max ms |', '|---|---|---|---|---|---|']
  names = {'in_process_floor': 'in-process eager signature call (floor)',
           'in_process_session_floor': 'in-process Session call, as the server runs it (floor)',
           'grpc_batching_off': 'gRPC Predict, our server, batching off',
           'grpc_batching_on': 'gRPC Predict, our server, batching on',
           'grpc_noop_server': 'gRPC Predict, no-op server'}
  for key, row in results['latency'].items():
    name = (f'{names[key[:-len(NATIVE)]]}, native client' if key.endswith(NATIVE)
            else names[key])
    lines.append(f'| {name} | {row["p50_ms"]} | {row["p90_ms"]} | {row["p99_ms"]} | '
                 f'{row["mean_ms"]} | {row["max_ms"]} |')
  lines += ['', f'## Throughput, batch-1 requests, {settings["throughput_seconds"]} s per '
            f'measurement after {settings["throughput_warmup_seconds"]} s warmup', '',
            '| server | clients | requests/s | images/s | p50 ms | p99 ms | errors | '
            'server CPU | client CPU | other CPU | requests per server CPU-s | mean batch |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|']
  servers = {'server_batching_off': 'ours, batching off', 'server_batching_on': 'ours, batching on',
             'noop_server': 'no-op PredictionService'}
  for key, rows in results['throughput'].items():
    for row in rows:
      errors = sum(row['errors'].values())
      lines.append(f'| {servers[key]} | {row["clients"]} | {row["requests_per_second"]} | '
                   f'{row["images_per_second"]} | {row["latency"].get("p50_ms", "-")} | '
                   f'{row["latency"].get("p99_ms", "-")} | {errors or 0} | '
                   f'{row["server_cpu_cores"]} | {row["client_cpu_cores"]} | '
                   f'{row["other_cpu_cores"]} | {row["requests_per_server_cpu_second"]} | '
                   f'{row.get("mean_batch_size") or "-"} |')
  rounds = results['goal_rounds']
  lines += _rounds(rounds, f'{rounds["clients"]} clients')
  if rounds.get('native_client'):
    lines += _rounds(rounds['native_client'], f'{rounds["clients"]} clients of the native client')
  lines += ['', '## Goals', '', '| goal | value | met |', '|---|---|---|']
  for goal in results['goals'].values():
    if 'noop_round_trip_ms' in goal:
      value = (f'{goal["value_ms"]} ms (the no-op server\'s round trip alone: '
               f'{goal["noop_round_trip_ms"]} ms')
      if goal.get('native_client_value_ms') is not None:
        value += (f'; from the native client: {goal["native_client_value_ms"]} ms, the no-op\'s '
                  f'round trip {goal["native_client_noop_round_trip_ms"]} ms')
      value += ')'
    elif 'value_ms' in goal:
      value = f'{goal["value_ms"]} ms'
    else:
      value = (f'{goal["value_ratio"]}, the median of {goal["rounds"]} interleaved rounds (the '
               f'throughput table\'s single runs: {goal["single_run_ratio"]}; per server '
               f'CPU-second: {goal["per_server_cpu_second_ratio"]}')
      if goal.get('minimal_batching_ratio') is not None:
        value += (f'; the minimal batching server, same rounds: '
                  f'{goal["minimal_batching_ratio"]}')
      if goal.get('native_client_ratio') is not None:
        value += (f'; from the native client: {goal["native_client_ratio"]}, the minimal '
                  f'batching server {goal["native_client_minimal_ratio"]}')
      value += ')'
    lines.append(f'| {goal["goal"]} | {value} | {"yes" if goal["met"] else "no"} |')
  threads = settings['grpc_max_threads']
  batching = ', '.join(f'{key} {value}'
                       for key, value in settings['batching_parameters'].items())
  lines += [
      '', '## How it was measured', '',
      '- Every server is a subprocess, started alone for the latency and throughput tables: '
      f'`python -m serving.server --port 0 --model_name {settings["model_name"]} '
      f'--model_base_path BASE --grpc_max_threads {threads}` (batching on adds '
      f'`--enable_batching` with {batching}, and a REST port serving its Prometheus metrics, '
      'from which "mean batch" is read: requests batched per model call, over the warmup and '
      'the window). The no-op server (`benchmarks/serving_load.py`) is the same stack: a '
      f'`grpc.aio` server with the same {threads}-thread pool and message limits, whose '
      'coroutine Predict returns a fixed PredictResponse (our server\'s own answer to one '
      'request).',
      '- The minimal batching server (`benchmarks/serving_minimal.py`) is the same stack again, '
      'serving the same SavedModel with the same batching parameters and doing nothing else: '
      'requests gather on the event loop under one timer, the batch runs on an executor thread, '
      'each request answers with its row. No model manager, input checks, deadlines, metrics or '
      'error mapping. It takes part in the goal\'s rounds as a yardstick: the share of the '
      'no-op\'s requests/s that batching in Python keeps at all on this machine.',
      '- Two floors, both in the benchmark process: the eager call '
      '`tf.saved_model.load(dir).signatures["serving_default"](images=tf.constant([png]))`, and '
      'the call the server makes, a prepared Session callable (Session::RunCallable) of the '
      'signature through `serving.servable.LoadedVersion` with the server\'s default thread '
      'settings. The goal is '
      'measured against the faster of the two.',
      f'- Requests are batch-1 PredictRequests of {settings["distinct_images"]} scikit-learn '
      'digits (0..16 scaled to 0..255, encoded with tf.io.encode_png), serialized once; clients '
      'send bytes and '
      'do not parse answers, so the client side costs as little CPU as gRPC allows.',
      f'- Load generation: up to {settings["client_processes"]} spawned client processes '
      '(no TensorFlow in them), the clients spread evenly over them, one thread with a blocking '
      'call loop and its own channel (own TCP connection) per client. Threads, not asyncio, '
      'because a blocked gRPC call releases the GIL and the per-process count stays small; '
      'processes, not one process, so 32 clients do not queue on one GIL. A request counts '
      'when it completes inside the window; its latency is measured by its client.',
      '- CPU columns are cores used during the window: the server process, the client processes, '
      'and everything else on the machine (system-wide busy time minus the two). Requests per '
      'server CPU-second is what one core of server time buys, which other work skews less '
      'than requests/s.',
      f'- Noise: the machine has {machine["cpus"]} CPUs and runs other work; clients and server '
      'share the same CPUs, so throughput figures are for this machine, and "other CPU" shows how '
      'much of it was busy with something else during each measurement. Two runs of the same '
      'server a few minutes apart differed by up to 40% here, so the throughput goal is judged '
      'on interleaved rounds: the servers up at once, each measured in turn, the order '
      'reversed every round, and the median of the per-round ratios.',
      '- The native client (`benchmarks/native_grpc_client.cc`, C++ on gRPC C++, built by the '
      'benchmark where g++ and libgrpc++ are installed) repeats the sequential latency calls and '
      'the goal\'s rounds with no Python in the client: the same request bytes, one connection '
      'per client, one thread per client in one process. The Python clients cost about 0.1 ms a '
      'call and share their processes\' GILs, in every server\'s figures alike; the native '
      'client\'s figures show what the servers themselves cost. The goals are judged on the '
      'Python clients, as before; the native figures are context.'
      + _native_missing(results.get('native_client')),
      '']
  return '\n'.join(lines)


def _native_missing(native: Optional[Dict]) -> str:
  # Reports written before the native client took part say nothing of it.
  if native is None or native['available']:
    return ''
  return f' Not in this run: the client {native["missing"]}.'


def _rounds(rounds: Dict, who: str) -> List[str]:
  lines = ['', f'## Batching on against the no-op server, {who}, interleaved rounds', '',
           '| round | ours, batching on, requests/s | no-op requests/s | ratio | '
           'minimal batching, requests/s | its ratio | other CPU |',
           '|---|---|---|---|---|---|---|']
  for number, row in enumerate(rounds['rounds'], 1):
    # Reports written before the minimal batching server took part have no such columns.
    lines.append(f'| {number} | {row["batching_on_requests_per_second"]} | '
                 f'{row["noop_requests_per_second"]} | {row["ratio"]} | '
                 f'{row.get("minimal_requests_per_second", "-")} | '
                 f'{row.get("minimal_ratio", "-")} | '
                 f'{"-" if row["other_cpu_cores"] is None else row["other_cpu_cores"]} |')
  if rounds.get('minimal_median_ratio') is not None:
    lines += ['', f'Median ratios: ours {rounds["median_ratio"]}, the minimal batching server '
              f'{rounds["minimal_median_ratio"]}.']
  return lines
