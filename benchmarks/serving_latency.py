"""Benchmark: model server gRPC latency and throughput vs. an in-process floor and a no-op server.

Measures, in one run, with the classifier SavedModel the pipeline pushed:

1. batch-1 Predict latency (p50, p99) over gRPC on loopback, sequential calls, next to the floor:
   the same SavedModel signature called in this process;
2. throughput (requests/s, images/s) of batch-1 Predict at several numbers of concurrent
   clients, with server-side batching off and on;
3. the same for a no-op PredictionService (Python grpc.aio, same thread pool, fixed response),
   the ceiling of the gRPC stack the server is built on;
4. the goal's comparison, batching on against the no-op at the most clients, again in interleaved
   rounds with the servers up, judged on the median ratio. A third server takes part in every
   round: benchmarks/serving_minimal.py, the same batching with no other work, what any batching
   server in Python could keep of the no-op's requests/s here.
5. where g++ and gRPC C++ are installed, the latency calls and the goal's rounds again from a
   native client (benchmarks/native_grpc_client.cc): what the servers cost without the Python
   client's own share. Context only: the goals are judged on the Python clients.

Every server is a subprocess, alone in 1-3. Load comes from client processes (spawned, so they
load neither TensorFlow nor the server's GIL), each running blocking calls on several threads,
one channel and connection per client; requests are serialized once up front and responses are
not parsed, so the clients spend as little of the 2 CPUs as gRPC allows.

  .venv/bin/python benchmarks/serving_latency.py [--model_dir DIR] [--quick] [--goal_rounds N]
      [--out DIR]

Writes serving_latency.json and serving_latency.md.
"""

import argparse
import os
import platform
import shutil
import re
import subprocess
import sys
import tempfile
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks import results_files  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import native_client  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import serving_goals  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import serving_load  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import serving_report  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks.serving_load import GRPC_THREADS  # noqa: E402  pylint: disable=wrong-import-position

MODEL_NAME = 'classifier'
METRICS_PATH = '/metrics'
SIGNATURE = 'serving_default'
BATCHING = {'max_batch_size': 32, 'batch_timeout_micros': 1000, 'num_batch_threads': 2}
DISTINCT_IMAGES = 64  # Requests cycle through this many digits, so no answer is cached anywhere.


# --- the model and the requests ------------------------------------------------------------------
def find_model(model_dir: Optional[str]) -> str:
  """The SavedModel version folder to serve: `model_dir`, or the newest pushed version."""
  if model_dir:
    if not os.path.exists(os.path.join(model_dir, 'saved_model.pb')):
      sys.exit(f'serving_latency: error: {model_dir} holds no saved_model.pb; pass a pushed '
               f'version folder, e.g. outputs/serving/{MODEL_NAME}/<version>')
    return os.path.abspath(model_dir)
  from ganpipe.pipeline import config as config_lib  # pylint: disable=import-outside-toplevel
  root = config_lib.PathsConfig().serving_root
  base = os.path.join(root if os.path.isabs(root) else os.path.join(REPO, root), MODEL_NAME)
  versions = sorted((int(name) for name in (os.listdir(base) if os.path.isdir(base) else [])
                     if name.isdigit() and
                     os.path.exists(os.path.join(base, name, 'saved_model.pb'))), reverse=True)
  if not versions:
    sys.exit(f'serving_latency: error: no pushed {MODEL_NAME} model under {base}. Run the '
             'pipeline first (`.venv/bin/ganpipe run --small`, a few minutes), or pass '
             '--model_dir DIR')
  return os.path.join(base, str(versions[0]))


def base_path_for(version_dir: str, workdir: str) -> str:
  """A model base path holding only `version_dir`, so the server serves exactly that version."""
  base = os.path.join(workdir, MODEL_NAME)
  os.makedirs(base, exist_ok=True)
  name = os.path.basename(version_dir.rstrip('/'))
  os.symlink(version_dir, os.path.join(base, name if name.isdigit() and int(name) > 0 else '1'))
  return base


def digit_pngs(count: int) -> List[bytes]:
  """Encoded 8x8 grayscale PNGs of scikit-learn's digits, pixel values scaled 0..16 to 0..255."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  images = datasets.load_digits().images[:count]
  pixels = np.round(images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., np.newaxis]
  return [tf.io.encode_png(image).numpy() for image in pixels]


def predict_requests(pngs: Sequence[bytes]) -> List[bytes]:
  """One serialized batch-1 PredictRequest per image."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  requests = []
  for png in pngs:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = SIGNATURE
    request.inputs['images'].CopyFrom(tf.make_tensor_proto([png], dtype=tf.string))
    requests.append(request.SerializeToString())
  return requests


# --- servers ------------------------------------------------------------------------------------
def model_server(workdir: str, base_path: str, batching: bool) -> serving_load.Server:
  command = [sys.executable, '-m', 'ganpipe.serving', '--port', '0', '--model_name', MODEL_NAME,
             '--model_base_path', base_path, '--grpc_max_threads', str(GRPC_THREADS)]
  name = 'server_batching_off'
  if batching:
    path = os.path.join(workdir, 'batching_parameters.txt')
    with open(path, 'w') as f:
      f.write(' '.join(f'{key} {{ value: {value} }}' for key, value in BATCHING.items()) + '\n')
    # Its batching metrics on a REST port, to read the batch sizes it made.
    monitoring = os.path.join(workdir, 'monitoring.config')
    with open(monitoring, 'w') as f:
      f.write(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    command += ['--enable_batching', '--batching_parameters_file', path,
                '--rest_api_port', '0', '--monitoring_config_file', monitoring]
    name = 'server_batching_on'
  return serving_load.Server(name, command, workdir)


def batch_counts(server: serving_load.Server) -> Optional[Tuple[float, float]]:
  """(requests batched, model calls) so far, from the server's metrics; None without them."""
  if server.rest_target is None:
    return None
  with urllib.request.urlopen(f'http://{server.rest_target}{METRICS_PATH}', timeout=30) as page:
    text = page.read().decode()
  requests = re.search(r'^:tensorflow:serving:batching_session:queuing_latency_count\S* (\S+)$',
                       text, re.MULTILINE)
  calls = re.search(r'^:tensorflow:serving:batching_session:wrapped_run_count (\S+)$', text,
                    re.MULTILINE)
  return (float(requests.group(1)) if requests else 0.0,
          float(calls.group(1)) if calls else 0.0)


# --- latency ------------------------------------------------------------------------------------
def floor_latency(version_dir: str, pngs: Sequence[bytes], count: int,
                  warmup: int) -> Dict[str, float]:
  """The signature called eagerly, as `tf.saved_model.load` gives it."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  function = tf.saved_model.load(version_dir).signatures[SIGNATURE]
  return serving_load.sequential_latency(lambda png: function(images=tf.constant([png])), pngs,
                                         count, warmup)


def session_floor_latency(version_dir: str, pngs: Sequence[bytes], count: int,
                          warmup: int) -> Dict[str, float]:
  """The signature called exactly as the server calls it: a prepared Session callable."""
  # pylint: disable=import-outside-toplevel
  from ganpipe.serving import config as serving_config
  from ganpipe.serving import servable
  # pylint: enable=import-outside-toplevel
  options = serving_config.ServerOptions(
      model_config=serving_config.single_model_config(MODEL_NAME, version_dir))
  signature = servable.LoadedVersion(MODEL_NAME, 1, version_dir,
                                     serving_config.session_config(options)).signature(SIGNATURE)
  return serving_load.sequential_latency(
      lambda png: signature({'images': np.array([png], dtype=object)}), pngs, count, warmup)


# --- report -------------------------------------------------------------------------------------
def check_response(target: str, request: bytes, expected_class: int) -> bytes:
  """One real Predict; fails loudly unless the server answers what the floor answers."""
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  channel = serving_load.open_channel(target)
  try:
    raw = channel.unary_unary(serving_load.PREDICT)(request, timeout=60)
  finally:
    channel.close()
  response = predict_pb2.PredictResponse.FromString(raw)
  missing = {'probabilities', 'class_ids', 'class_names'} - set(response.outputs)
  if missing or list(response.outputs['class_ids'].int64_val) != [expected_class]:
    raise RuntimeError(f'unexpected Predict response from {target}: {response}')
  return raw


def minimal_server(workdir: str, version_dir: str) -> serving_load.Server:
  """benchmarks/serving_minimal.py on the same model and batching parameters: the reference."""
  command = [sys.executable, os.path.join(REPO, 'benchmarks', 'serving_minimal.py'),
             '--model_dir', version_dir]
  for key in ('max_batch_size', 'batch_timeout_micros', 'num_batch_threads'):
    command += [f'--{key}', str(BATCHING[key])]
  return serving_load.Server('minimal_batching_server', command, workdir)


def goal_rounds(workdir: str, base_path: str, version_dir: str, response: bytes,
                requests: List[bytes], settings: Dict, native: Optional[Tuple[str, str]],
                log) -> Dict:
  """The batching-vs-no-op goal, measured in interleaved rounds at the highest concurrency.

  The minimal batching server takes part in every round too: the share of the no-op's
  requests/s that batching in Python keeps at all on this machine, the context for ours. With
  `native` (the native client and its request file), the same rounds follow from it.
  """
  clients, count = max(settings['clients']), settings['goal_rounds']
  warmup, seconds = settings['throughput_warmup_seconds'], settings['throughput_seconds']
  servers = []
  try:
    servers.append(model_server(workdir, base_path, batching=True))
    servers.append(serving_load.noop_server(workdir, response))
    servers.append(minimal_server(workdir, version_dir))
    log(f'goal: {count} interleaved rounds of {clients} clients, batching on, no-op and minimal')
    python_rounds = serving_load.interleaved(
        servers, lambda server: serving_load.throughput(
            server, requests, clients, settings['client_processes'], warmup, seconds), count)
    native_rounds = None
    if native:
      log(f'goal: the same {count} rounds from the native client')
      native_rounds = serving_load.interleaved(
          servers, lambda server: native_client.throughput(
              native[0], server.target, native[1], clients, warmup, seconds), count)
  finally:
    for server in servers:
      server.stop()
  result = {'clients': clients, **serving_goals.ratio_table(*python_rounds)}
  if native_rounds:
    result['native_client'] = serving_goals.ratio_table(*native_rounds)
  return result


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model_dir', help='a pushed SavedModel version folder (default: the '
                      'newest under the pipeline\'s serving root)')
  parser.add_argument('--quick', action='store_true', help='a fast smoke run: fewer calls, '
                      'shorter windows')
  parser.add_argument('--latency_calls', type=int, default=None, help='default 2000 (quick 300)')
  parser.add_argument('--latency_warmup_calls', type=int, default=None,
                      help='default 200 (quick 50)')
  parser.add_argument('--seconds', type=float, default=None,
                      help='throughput window per measurement (default 8, quick 2)')
  parser.add_argument('--warmup_seconds', type=float, default=None, help='default 1 (quick 0.5)')
  parser.add_argument('--clients', default='1,8,32', help='concurrency levels, comma-separated')
  parser.add_argument('--client_processes', type=int, default=max(2, os.cpu_count() or 1))
  parser.add_argument('--goal_rounds', type=int, default=None,
                      help='interleaved rounds of the batching-vs-no-op goal (default 5, '
                      'quick 1)')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  def pick(value, full, quick):
    return value if value is not None else (quick if args.quick else full)
  settings = {
      'quick': args.quick,
      'latency_calls': pick(args.latency_calls, 2000, 300),
      'latency_warmup_calls': pick(args.latency_warmup_calls, 200, 50),
      'throughput_seconds': pick(args.seconds, 8.0, 2.0),
      'throughput_warmup_seconds': pick(args.warmup_seconds, 1.0, 0.5),
      'clients': [int(value) for value in args.clients.split(',')],
      'goal_rounds': pick(args.goal_rounds, 5, 1),
      'client_processes': args.client_processes,
      'model_name': MODEL_NAME, 'grpc_max_threads': GRPC_THREADS,
      'batching_parameters': BATCHING,
      'distinct_images': DISTINCT_IMAGES,
  }
  version_dir = find_model(args.model_dir)
  load_before = [round(value, 2) for value in os.getloadavg()]

  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  workdir = tempfile.mkdtemp(prefix='ganpipe-serving-bench-')
  base_path = base_path_for(version_dir, workdir)
  pngs = digit_pngs(DISTINCT_IMAGES)
  requests = predict_requests(pngs)
  expected = int(tf.saved_model.load(version_dir).signatures[SIGNATURE](
      images=tf.constant(pngs[:1]))['class_ids'].numpy()[0])
  calls, warmup_calls = settings['latency_calls'], settings['latency_warmup_calls']

  def log(message):
    print(f'[serving_latency] {message}', file=sys.stderr, flush=True)

  native_binary, native_missing = native_client.build(workdir)
  native = None
  if native_binary:
    native = (native_binary, native_client.write_requests(os.path.join(workdir, 'requests.bin'),
                                                          requests))
  else:
    log(f'no native-client figures: the client {native_missing}')

  latency, runs = {}, {}
  log(f'floor: {calls} in-process calls of {version_dir}')
  latency['in_process_floor'] = floor_latency(version_dir, pngs, calls, warmup_calls)
  latency['in_process_session_floor'] = session_floor_latency(version_dir, pngs, calls,
                                                              warmup_calls)

  def measure(server: serving_load.Server, latency_key: str) -> List[Dict]:
    log(f'{server.name}: {calls} sequential calls at {server.target}')
    latency[latency_key] = serving_load.grpc_latency(server.target, requests, calls, warmup_calls)
    if native:
      latency[latency_key + serving_goals.NATIVE] = native_client.latency(
          native[0], server.target, native[1], calls, warmup_calls)
    rows = []
    for clients in settings['clients']:
      log(f'{server.name}: {clients} clients for {settings["throughput_seconds"]} s')
      before = batch_counts(server)
      row = serving_load.throughput(server, requests, clients, settings['client_processes'],
                                    settings['throughput_warmup_seconds'],
                                    settings['throughput_seconds'])
      if before is not None:
        after = batch_counts(server)
        # Requests per model call over the warmup and the window: the batches batching made.
        model_calls = after[1] - before[1]
        row['mean_batch_size'] = (round((after[0] - before[0]) / model_calls, 2) if model_calls
                                  else None)
      rows.append(row)
    return rows

  response = None
  for batching in (False, True):
    server = model_server(workdir, base_path, batching)
    try:
      response = check_response(server.target, requests[0], expected)
      runs[server.name] = measure(
          server, 'grpc_batching_on' if batching else 'grpc_batching_off')
    finally:
      server.stop()
  server = serving_load.noop_server(workdir, response)
  try:
    runs[server.name] = measure(server, 'grpc_noop_server')
  finally:
    server.stop()
  rounds = goal_rounds(workdir, base_path, version_dir, response, requests, settings, native, log)

  commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, check=False,
                          capture_output=True, text=True).stdout.strip()
  results = {
      'benchmark': 'serving_latency', 'commit': commit,
      'model_dir': os.path.relpath(version_dir, REPO) if version_dir.startswith(REPO)
                   else version_dir,
      'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                  'tensorflow': tf.__version__, 'grpcio': grpc.__version__,
                  'platform': platform.platform(), 'load_average_before': load_before,
                  'load_average_after': [round(value, 2) for value in os.getloadavg()]},
      'settings': settings, 'latency': latency, 'throughput': runs,
      'goal_rounds': rounds,
      'native_client': {'available': bool(native), 'missing': native_missing},
  }
  results['goals'] = serving_goals.goals(results)
  results_files.write(args.out, 'serving_latency', results, serving_report.markdown(results))
  # The server logs are kept only when something failed, to read why.
  shutil.rmtree(workdir, ignore_errors=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
