"""Benchmark: the Predict hot path before and after a change, and with each serialization.

Runs, in one process and with every server up at once, the model server of:

- `before`: another git revision (`--before`, by default the last one before the server filled
  the dtypes' repeated fields; it always answered in tensor_content), from `git archive`;
- `after`: this checkout, as it starts by default (repeated fields, as TF Serving);
- `after_tensor_content`: this checkout with `--enable_serialization_as_tensor_content`;

on the classifier the pipeline pushed, and measures for each, in interleaved rounds (the order
reversed every round, so other work on the machine falls on all of them):

1. batch-1 Predict latency over gRPC on loopback, sequential calls (p50, p99);
2. requests/s of 32 concurrent batch-1 clients, with server-side batching off and on.

Each server's answer is checked against the in-process model first.

  .venv/bin/python benchmarks/serving_serialization.py [--before REV] [--model_dir DIR]
      [--rounds N] [--quick] [--out DIR]

Writes serving_serialization.json and serving_serialization.md.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks import revisions  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import results_files  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import serving_latency  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import serving_load  # noqa: E402  pylint: disable=wrong-import-position

# The last revision whose server answered Predict in tensor_content only.
DEFAULT_BEFORE = '8c98eb9'
CLIENTS = 32
VARIANTS = ('before', 'after', 'after_tensor_content')


def start(variant: str, code: str, workdir: str, base_path: str,
          batching: bool) -> serving_load.Server:
  """`python -m ganpipe.serving` run in `code`, so that its `ganpipe` is the one imported (the
  editable install's finder comes after sys.path)."""
  command = [sys.executable, '-m', 'ganpipe.serving', '--port', '0',
             '--model_name', serving_latency.MODEL_NAME, '--model_base_path', base_path,
             '--grpc_max_threads', str(serving_latency.GRPC_THREADS)]
  if variant == 'after_tensor_content':
    command.append('--enable_serialization_as_tensor_content')
  if batching:
    path = os.path.join(workdir, 'batching_parameters.txt')
    with open(path, 'w') as f:
      f.write(' '.join(f'{key} {{ value: {value} }}'
                       for key, value in serving_latency.BATCHING.items()) + '\n')
    command += ['--enable_batching', '--batching_parameters_file', path]
  name = f'{variant}_batching_{"on" if batching else "off"}'
  return serving_load.Server(name, command, workdir, cwd=code)


def check(server: serving_load.Server, request: bytes, expected_class: int) -> str:
  """Which fields carry the answer; fails unless it is the model's answer."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  channel = serving_load.open_channel(server.target)
  try:
    raw = channel.unary_unary(serving_load.PREDICT)(request, timeout=60)
  finally:
    channel.close()
  response = predict_pb2.PredictResponse.FromString(raw)
  if tf.make_ndarray(response.outputs['class_ids']).tolist() != [expected_class]:
    raise RuntimeError(f'{server.name} answered {response}, expected class {expected_class}')
  # The probabilities: ten floats (one value alone goes in its field either way).
  return ('tensor_content' if response.outputs['probabilities'].tensor_content else
          'repeated fields')


def median(values: List[float]) -> float:
  return round(statistics.median(values), 3)


def markdown(results: Dict) -> str:
  s = results['settings']
  lines = [
      '# Predict before and after: repeated fields against tensor_content', '',
      f'{results["model_dir"]}, {s["rounds"]} interleaved rounds; each round '
      f'{s["latency_calls"]} sequential batch-1 calls and {s["seconds"]:g} s of {CLIENTS} '
      f'clients per server. `before` is {results["before_revision"]}. Medians over rounds.', '',
      '| server | answers in | batch-1 p50 (ms) | batch-1 p99 (ms) | '
      f'{CLIENTS} clients, batching off (req/s) | {CLIENTS} clients, batching on (req/s) |',
      '|---|---|---|---|---|---|',
  ]
  for variant in VARIANTS:
    row = results['summary'][variant]
    lines.append(f'| `{variant}` | {row["answers_in"]} | {row["p50_ms"]} | {row["p99_ms"]} | '
                 f'{row["rps_batching_off"]} | {row["rps_batching_on"]} |')
  lines += ['', f'Host: {results["host"]}; load average before: {results["load_before"]}.', '']
  return '\n'.join(lines)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--before', default=DEFAULT_BEFORE, help='the git revision to compare '
                      'with (default: %(default)s)')
  parser.add_argument('--model_dir', help='a pushed classifier version folder (default: the '
                      'newest under the pipeline\'s serving root)')
  parser.add_argument('--rounds', type=int, default=None, help='default 5 (quick 1)')
  parser.add_argument('--quick', action='store_true', help='a fast smoke run')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  settings = {'rounds': args.rounds or (1 if args.quick else 5),
              'latency_calls': 200 if args.quick else 1000, 'latency_warmup_calls': 50,
              'seconds': 2.0 if args.quick else 6.0, 'warmup_seconds': 0.5 if args.quick else 1.0,
              'client_processes': max(2, os.cpu_count() or 1),
              'batching_parameters': serving_latency.BATCHING}
  version_dir = serving_latency.find_model(args.model_dir)
  load_before = [round(value, 2) for value in os.getloadavg()]

  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  workdir = tempfile.mkdtemp(prefix='ganpipe-serialization-bench-')
  base_path = serving_latency.base_path_for(version_dir, workdir)
  pngs = serving_latency.digit_pngs(serving_latency.DISTINCT_IMAGES)
  requests = serving_latency.predict_requests(pngs)
  expected = int(tf.saved_model.load(version_dir).signatures[serving_latency.SIGNATURE](
      images=tf.constant(pngs[:1]))['class_ids'].numpy()[0])
  code = {'before': revisions.export_revision(args.before, workdir, 'serving_serialization'), 'after': REPO,
          'after_tensor_content': REPO}

  def log(message):
    print(f'[serving_serialization] {message}', file=sys.stderr, flush=True)

  servers: Dict[str, serving_load.Server] = {}
  try:
    for variant in VARIANTS:
      for batching in (False, True):
        server = start(variant, code[variant], workdir, base_path, batching)
        servers[server.name] = server
        log(f'{server.name} at {server.target}')
    answers_in = {name: check(server, requests[0], expected) for name, server in servers.items()}
    latency: Dict[str, List[Dict]] = {variant: [] for variant in VARIANTS}
    load: Dict[str, List[Dict]] = {name: [] for name in servers}
    for number in range(settings['rounds']):
      order = list(VARIANTS) if number % 2 == 0 else list(VARIANTS)[::-1]
      for variant in order:
        off, on = servers[f'{variant}_batching_off'], servers[f'{variant}_batching_on']
        log(f'round {number + 1}: {variant}')
        latency[variant].append(serving_load.grpc_latency(
            off.target, requests, settings['latency_calls'], settings['latency_warmup_calls']))
        for server in (off, on):
          load[server.name].append(serving_load.throughput(
              server, requests, CLIENTS, settings['client_processes'],
              settings['warmup_seconds'], settings['seconds']))
  finally:
    for server in servers.values():
      server.stop()

  summary = {variant: {
      'answers_in': answers_in[f'{variant}_batching_off'],
      'p50_ms': median([run['p50_ms'] for run in latency[variant]]),
      'p99_ms': median([run['p99_ms'] for run in latency[variant]]),
      'rps_batching_off': median([run['requests_per_second']
                                  for run in load[f'{variant}_batching_off']]),
      'rps_batching_on': median([run['requests_per_second']
                                 for run in load[f'{variant}_batching_on']]),
  } for variant in VARIANTS}
  results = {'model_dir': version_dir, 'before_revision': args.before, 'settings': settings,
             'host': f'{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs',
             'load_before': load_before, 'summary': summary, 'latency_rounds': latency,
             'throughput_rounds': load}
  results_files.write(args.out, 'serving_serialization', results, markdown(results))
  return 0


if __name__ == '__main__':
  sys.exit(main())
