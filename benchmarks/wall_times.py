"""Benchmark: wall time of `make demo` (cold and cached) and of `make test`, from clean clones.

Each measurement starts from `git clone` of this repository's HEAD into a temporary folder, with
an empty uv cache (UV_CACHE_DIR), so "cold" includes downloading and installing the locked
environment exactly as on a fresh machine.

  .venv/bin/python benchmarks/wall_times.py [--skip-test] [--out benchmarks/results]

Writes wall_times.json and wall_times.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed(command, cwd, env, log_path):
  started = time.monotonic()
  with open(log_path, 'w') as log:
    result = subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, check=False)
  seconds = round(time.monotonic() - started, 1)
  print(f'{" ".join(command)} in {cwd}: exit {result.returncode}, {seconds} s', flush=True)
  return {'command': ' '.join(command), 'exit_code': result.returncode, 'seconds': seconds,
          'log': log_path}


def _fresh_clone(workdir: str, name: str) -> str:
  target = os.path.join(workdir, name)
  subprocess.run(['git', 'clone', '--quiet', REPO, target], check=True)
  return target


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  parser.add_argument('--skip-test', action='store_true', help='measure make demo only')
  args = parser.parse_args()

  workdir = tempfile.mkdtemp(prefix='ganpipe-walltime-')
  env = dict(os.environ, CI='true')
  env.pop('VIRTUAL_ENV', None)
  commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout.strip()
  results = {'benchmark': 'wall_times', 'commit': commit,
             'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()}}

  demo = _fresh_clone(workdir, 'demo')
  demo_env = dict(env, UV_CACHE_DIR=os.path.join(workdir, 'uv-cache-demo'))
  results['demo_cold'] = _timed(['make', 'demo'], demo, demo_env,
                                os.path.join(workdir, 'demo_cold.log'))
  results['demo_cached'] = _timed(['make', 'demo'], demo, demo_env,
                                  os.path.join(workdir, 'demo_cached.log'))
  if not args.skip_test:
    tests = _fresh_clone(workdir, 'test')
    test_env = dict(env, UV_CACHE_DIR=os.path.join(workdir, 'uv-cache-test'))
    results['test_from_clean_clone'] = _timed(['make', 'test'], tests, test_env,
                                              os.path.join(workdir, 'test.log'))

  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'wall_times.json'), 'w') as f:
    json.dump(results, f, indent=2)
  rows = [(key, value) for key, value in results.items() if isinstance(value, dict)
          and 'seconds' in value]
  with open(os.path.join(args.out, 'wall_times.md'), 'w') as f:
    f.write(f'# Wall times (commit {commit}, {os.cpu_count()} CPUs)\n\n'
            '| measurement | command | exit | seconds |\n|---|---|---|---|\n')
    for key, value in rows:
      f.write(f'| {key} | `{value["command"]}` | {value["exit_code"]} | {value["seconds"]} |\n')
    f.write('\nCold runs start from a fresh clone with an empty uv cache.\n')
  return 0 if all(value['exit_code'] == 0 for _, value in rows) else 1


if __name__ == '__main__':
  sys.exit(main())
