"""Benchmark: how long each `ganpipe` command takes to answer, before and after a change.

Runs each command in a fresh interpreter, from an empty working folder, for:

- `before`: another git revision (`--before`, by default the last one before the CLI imported
  lazily), its `ganpipe` package unpacked from `git archive`;
- `after`: this checkout;

interleaved (before, after, after, before, ...) so that other work on the machine falls on both.
The commands are the ones users wait on without a pipeline running: help, configuration errors,
reading a run, and the gRPC clients against a port where no server listens (their error path;
with a server they answer as fast plus one request).

  .venv/bin/python benchmarks/cli_startup.py [--before REV] [--repeats 3] [--metadata-path F]

Writes cli_startup.json and cli_startup.md.
"""

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks import revisions  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import results_files  # noqa: E402  pylint: disable=wrong-import-position

# The last revision whose every command imported TFX first.
DEFAULT_BEFORE = 'd6157b5'
VARIANTS = ('before', 'after')


def commands(port: int, store: str, image: str) -> Dict[str, List[str]]:
  """Command name -> `ganpipe` arguments."""
  target = ['--target', f'127.0.0.1:{port}']
  return {
      '--help': ['--help'],
      'run --help': ['run', '--help'],
      'run, missing data folder': ['run', '--data.dataset', 'folder', '--data.data_dir',
                                   'no/such/folder'],
      'run, bad flag value': ['run', '--classifier.epochs', 'ten'],
      'status, no store': ['status'],
      'status, a run': ['status', '--paths.metadata_path', store],
      'lineage, no such path': ['lineage', '/nowhere', '--paths.metadata_path', store],
      'compile-kubeflow, local root': ['compile-kubeflow', '--kubeflow.image', 'r/ganpipe:1'],
      'classify, no server': ['classify', *target, image],
      'generate, no server': ['generate', *target, '--out', 'grid.png'],
      'models, no server': ['models', *target],
  }


def write_store(path: str) -> None:
  """A small ML Metadata store with one run, as TFX writes it."""
  from tests.pipeline import mlmd_writer  # pylint: disable=import-outside-toplevel
  store = mlmd_writer.MlmdWriter(path)
  examples = store.artifact('Examples', '/p/image_example_gen/examples/1')
  store.execution('image_example_gen', 'run-1', {}, {'examples': examples})
  model = store.artifact('Model', '/p/classifier_trainer/model/2')
  store.execution('classifier_trainer', 'run-1', {'examples': examples}, {'model': model})


def time_command(code: str, argv: List[str], cwd: str) -> Dict:
  env = {key: value for key, value in os.environ.items()
         if key not in ('PYTHONPATH', 'grpc_proxy', 'https_proxy', 'http_proxy')}
  env['PYTHONPATH'] = code
  started = time.perf_counter()
  result = subprocess.run([sys.executable, '-m', 'ganpipe.app.cli', *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
  seconds = time.perf_counter() - started
  last = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [''])[-1]
  return {'seconds': round(seconds, 2), 'exit_code': result.returncode, 'last_line': last[:300]}


def markdown(results: Dict) -> str:
  lines = [f'# `ganpipe` start-up, before ({results["before_revision"]}) and after', '',
           f'Median of {results["repeats"]} runs each, in fresh interpreters, interleaved. '
           f'{results["cpus"]} CPUs; load average before: {results["load_before"]}, after: '
           f'{results["load_after"]}.', '',
           '| command | before (s) | after (s) | exit before/after | what after said |',
           '|---|---|---|---|---|']
  for name, row in results['commands'].items():
    said = row['after']['last_line'].replace('|', '\\|')[:110]
    lines.append(f'| `{name}` | {row["before"]["median_seconds"]} | '
                 f'{row["after"]["median_seconds"]} | {row["before"]["exit_code"]}/'
                 f'{row["after"]["exit_code"]} | {said} |')
  return '\n'.join(lines) + '\n'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--before', default=DEFAULT_BEFORE,
                      help='the git revision to compare with (default: %(default)s)')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--metadata-path', help="a real run's metadata.sqlite for `status` and "
                      '`lineage` (default: a small store written here)')
  parser.add_argument('--only', help='semicolon-separated command names to time')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  workdir = tempfile.mkdtemp(prefix='ganpipe-cli-startup-')
  code = {'before': revisions.export_revision(args.before, workdir, 'cli_startup'), 'after': REPO}
  store = args.metadata_path or os.path.join(workdir, 'metadata.sqlite')
  if not args.metadata_path:
    write_store(store)
  image = os.path.join(workdir, 'digit.png')
  with open(image, 'wb') as f:
    f.write(b'\x89PNG not a whole image: the command fails before sending it')
  # Bound but not listening: a connection is refused at once, as with no server running.
  closed = socket.socket()
  closed.bind(('127.0.0.1', 0))
  table = commands(closed.getsockname()[1], os.path.abspath(store), image)
  if args.only:
    table = {name: table[name] for name in args.only.split(';')}

  results = {'benchmark': 'cli_startup', 'before_revision': args.before,
             'repeats': args.repeats, 'cpus': os.cpu_count(), 'host': platform.node(),
             'load_before': [round(v, 2) for v in os.getloadavg()], 'commands': {}}
  for name, argv in table.items():
    runs = {variant: [] for variant in VARIANTS}
    for repeat in range(args.repeats):
      for variant in (VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]):
        cwd = tempfile.mkdtemp(dir=workdir)
        runs[variant].append(time_command(code[variant], argv, cwd))
    row = {}
    for variant in VARIANTS:
      row[variant] = {'median_seconds': round(statistics.median(
          r['seconds'] for r in runs[variant]), 2), 'runs': runs[variant],
                      'exit_code': runs[variant][-1]['exit_code'],
                      'last_line': runs[variant][-1]['last_line']}
    results['commands'][name] = row
    print(f'{name}: before {row["before"]["median_seconds"]} s, after '
          f'{row["after"]["median_seconds"]} s', flush=True)
  closed.close()
  results['load_after'] = [round(v, 2) for v in os.getloadavg()]
  results_files.write(args.out, 'cli_startup', results, markdown(results))
  return 0


if __name__ == '__main__':
  sys.exit(main())
