"""Runs multi_worker_check as two loopback workers and as one process, and compares the weights."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
CHECK_MODULE = 'tests.models.training.multi_worker_check'
WORKERS = 2
MODELS = ('gan', 'mlp')  # what multi_worker_check can train


class RunFailed(RuntimeError):
  """A check process failed or timed out; the message holds every process's stderr."""


def free_ports(count: int) -> List[int]:
  """Ports the kernel just handed out on 127.0.0.1, all held open until every one is picked."""
  with contextlib.ExitStack() as stack:
    sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
    for sock in sockets:
      sock.bind(('127.0.0.1', 0))
    return [sock.getsockname()[1] for sock in sockets]


def _start(mode: str, models: Sequence[str], eager: bool, out: str, log_dir: str, name: str,
           tf_config: Optional[Dict] = None) -> subprocess.Popen:
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('TF_CONFIG', None)
  if tf_config is not None:
    env['TF_CONFIG'] = json.dumps(tf_config)
  # stderr to files, not pipes: a full pipe would stall a worker and so its peer's collectives.
  stdout = open(os.path.join(log_dir, f'{name}.stdout'), 'w')
  stderr = open(os.path.join(log_dir, f'{name}.stderr'), 'w')
  with stdout, stderr:
    return subprocess.Popen(
        [sys.executable, '-m', CHECK_MODULE, '--mode', mode, '--model', *models, '--out', out]
        + (['--eager'] if eager else []),
        cwd=REPO, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)


def _tail(path: str, lines: int = 40) -> str:
  with open(path) as f:
    return ''.join(f.readlines()[-lines:])


def run_processes(models: Sequence[str], workdir: str, eager: bool = True,
                  timeout: float = 180.0) -> Dict[str, str]:
  """Starts two workers and one single-process run at once and waits for all three.

  Returns:
    Output folder of each run, keyed `worker0`, `worker1` and `single`.

  Raises:
    RunFailed: a process exited non-zero or the runs took over `timeout` seconds (all are
      killed then); the message holds the exit codes and the tail of each stderr.
  """
  os.makedirs(workdir, exist_ok=True)
  ports = free_ports(WORKERS)
  cluster = {'worker': [f'127.0.0.1:{port}' for port in ports]}
  outs = {name: os.path.join(workdir, name) for name in
          [f'worker{i}' for i in range(WORKERS)] + ['single']}
  processes = {}
  try:
    for i in range(WORKERS):
      tf_config = {'cluster': cluster, 'task': {'type': 'worker', 'index': i}}
      processes[f'worker{i}'] = _start('worker', models, eager, outs[f'worker{i}'], workdir,
                                       f'worker{i}', tf_config)
    processes['single'] = _start('single', models, eager, outs['single'], workdir, 'single')
    deadline = time.monotonic() + timeout
    # Poll rather than wait in turn: a crashed worker leaves its peer blocked in a collective.
    while time.monotonic() < deadline:
      running = [p.poll() for p in processes.values()]
      if None not in running or any(running):
        break
      time.sleep(0.5)
    running = [p.poll() for p in processes.values()]
    timed_out = None in running and not any(running)
  finally:
    for process in processes.values():
      if process.poll() is None:
        process.kill()
        process.wait()
  codes = {name: process.returncode for name, process in processes.items()}
  if timed_out or any(codes.values()):
    report = '\n'.join(f'--- {name} (exit {codes[name]}) stderr:\n'
                       f'{_tail(os.path.join(workdir, name + ".stderr"))}' for name in processes)
    reason = f'timed out after {timeout:.0f} s' if timed_out else 'a process failed'
    raise RunFailed(f'multi-worker check {reason}; exit codes {codes}\n{report}')
  return outs


def _load(path: str):
  with np.load(path) as data:
    initial = [data[key] for key in sorted(data.files) if key.startswith('initial_')]
    final = [data[key] for key in sorted(data.files) if key.startswith('final_')]
    return {'strategy': str(data['strategy']), 'multi_worker': bool(data['multi_worker']),
            'replicas': int(data['replicas']), 'global_batch': int(data['global_batch']),
            'steps': int(data['steps']), 'learning_rate': float(data['learning_rate']),
            'initial': initial, 'final': final}


def _max_abs_difference(first: List[np.ndarray], second: List[np.ndarray]) -> float:
  if [a.shape for a in first] != [b.shape for b in second]:
    raise ValueError('the runs built differently shaped models')
  return max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(first, second))


def compare(outs: Dict[str, str], model: str) -> Dict:
  """The max abs weight differences between the runs of `model`, and the update for scale."""
  runs = {name: _load(os.path.join(out, f'{model}.npz')) for name, out in outs.items()}
  workers = [runs[f'worker{i}'] for i in range(WORKERS)]
  single = runs['single']
  return {
      'model': model,
      'global_batch': single['global_batch'],
      'steps': single['steps'],
      'learning_rate': single['learning_rate'],
      'strategies': {name: run['strategy'] for name, run in runs.items()},
      'multi_worker': {name: run['multi_worker'] for name, run in runs.items()},
      'replicas': {name: run['replicas'] for name, run in runs.items()},
      'initial_worker_vs_single': max(_max_abs_difference(w['initial'], single['initial'])
                                      for w in workers),
      'worker_vs_worker': _max_abs_difference(workers[0]['final'], workers[1]['final']),
      'workers_vs_single': max(_max_abs_difference(w['final'], single['final'])
                               for w in workers),
      'max_abs_update': _max_abs_difference(single['final'], single['initial']),
  }


def run_agreement(models: Sequence[str] = MODELS, eager: bool = True,
                  timeout: float = 180.0, workdir: Optional[str] = None) -> Dict[str, Dict]:
  """Trains `models` on two loopback workers and in one process; the figures per model."""
  workdir = workdir or tempfile.mkdtemp(prefix='ganpipe-multi-worker-')
  started = time.monotonic()
  outs = run_processes(models, workdir, eager, timeout)
  seconds = round(time.monotonic() - started, 1)
  return {model: dict(compare(outs, model), seconds=seconds) for model in models}
