"""Benchmark: ImageExampleGen throughput and peak memory on the full Fashion-MNIST (70,000 images).

Runs the component's executor alone, as the launcher would, with Beam's DirectRunner in
multi-processing mode, and samples the resident memory of the whole process tree (the executor
and its Beam worker processes) every 0.2 s.

  .venv/bin/python benchmarks/ingestion_throughput.py [--workers 2] [--out benchmarks/results]

Writes ingestion_throughput.json and ingestion_throughput.md.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (sets TensorFlow's variables before it loads)
from tfx.dsl.components.base import base_beam_executor  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402
from tfx.utils import proto_utils  # noqa: E402

from ganpipe.components import artifacts  # noqa: E402
from ganpipe.components import beam_staging  # noqa: E402
from ganpipe.components.image_example_gen import component, executor, report  # noqa: E402
from ganpipe.components.image_example_gen.sources import builtin  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402


class MemorySampler(threading.Thread):
  """Peak RSS of this process and of its whole tree, and the CPU time of each process in it.

  CPU seconds, unlike wall time, hardly move when other work shares the machine: they say where
  the time goes (the executor, which is also Beam's runner, or its worker processes).
  """

  def __init__(self, interval: float = 0.2):
    super().__init__(daemon=True)
    self.interval = interval
    self.peak_self = 0
    self.peak_tree = 0
    self.worker_cpu = {}  # pid -> the last user + system seconds seen
    self.worker_names = {}  # pid -> its command line
    self._done = threading.Event()

  def run(self):
    me = psutil.Process()
    while not self._done.is_set():
      try:
        own = me.memory_info().rss
        tree = own
        for child in me.children(recursive=True):
          tree += child.memory_info().rss
          times = child.cpu_times()
          self.worker_cpu[child.pid] = times.user + times.system
          self.worker_names.setdefault(child.pid, ' '.join(child.cmdline()))
      except psutil.Error:
        continue
      self.peak_self = max(self.peak_self, own)
      self.peak_tree = max(self.peak_tree, tree)
      time.sleep(self.interval)

  def stop(self):
    self._done.set()
    self.join()


def _cpu_seconds() -> float:
  times = psutil.Process().cpu_times()
  return times.user + times.system


GOAL = 3000  # images/s on 2 cores: issue 27


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--mode', default='multi_processing',
                      choices=['multi_processing', 'in_memory', 'multi_threading'])
  parser.add_argument('--data-dir', default=builtin.FASHION_MNIST_DIR)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  gen = component.ImageExampleGen(source='fashion-mnist', input_base=args.data_dir,
                                  image_shape=(28, 28, 1))
  exec_properties = {key: proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR')
                     else value for key, value in gen.exec_properties.items()}
  workdir = tempfile.mkdtemp(prefix='ganpipe-ingest-')
  outputs = {'examples': standard_artifacts.Examples(), 'class_map': artifacts.ClassMap(),
             'ingestion_report': artifacts.IngestionReport()}
  for key, artifact in outputs.items():
    artifact.uri = os.path.join(workdir, key)
  context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=config_lib.BeamConfig(
      direct_running_mode=args.mode, direct_num_workers=args.workers).pipeline_args())

  sampler = MemorySampler()
  baseline = psutil.Process().memory_info().rss
  sampler.start()
  cpu_before = _cpu_seconds()
  started = time.monotonic()
  # As `ganpipe run` does: without it, TFX packages itself for remote workers first (2.4 s).
  with beam_staging.no_tfx_package_for_local_runners():
    executor.Executor(context).Do({}, {k: [v] for k, v in outputs.items()}, exec_properties)
  seconds = time.monotonic() - started
  executor_cpu = _cpu_seconds() - cpu_before
  sampler.stop()

  ingested = report.load(outputs['ingestion_report'].uri)
  shutil.rmtree(workdir, ignore_errors=True)
  images = ingested['accepted'] + ingested['rejected']
  result = {
      'benchmark': 'ingestion_throughput',
      'dataset': 'fashion-mnist (IDX, gzip)',
      'records': images,
      'accepted_by_split': ingested['accepted_by_split'],
      'rejected': ingested['rejected'],
      'beam': f'DirectRunner {args.mode}, {args.workers} workers',
      'cpus': os.cpu_count(),
      'wall_seconds': round(seconds, 1),
      'images_per_second': round(images / seconds, 1),
      'cpu_seconds_executor': round(executor_cpu, 1),
      'cpu_seconds_beam_workers': [round(cpu, 1) for pid, cpu in sorted(sampler.worker_cpu.items())
                                   if 'sdk_worker_main' in sampler.worker_names[pid]
                                   and not sampler.worker_names[pid].startswith('/bin/sh')],
      'cpu_seconds_other_children': round(sum(
          cpu for pid, cpu in sampler.worker_cpu.items()
          if 'sdk_worker_main' not in sampler.worker_names[pid]), 1),
      'peak_rss_executor_mb': round(sampler.peak_self / 2**20, 1),
      'peak_rss_process_tree_mb': round(sampler.peak_tree / 2**20, 1),
      'rss_before_run_mb': round(baseline / 2**20, 1),
      'dataset_decoded_mb': round(images * 28 * 28 / 2**20, 1),
      'goal_images_per_second': GOAL,
      'meets_goal': images / seconds >= GOAL,
  }
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'ingestion_throughput.json'), 'w') as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(args.out, 'ingestion_throughput.md'), 'w') as f:
    f.write('# ImageExampleGen on Fashion-MNIST\n\n| figure | value |\n|---|---|\n')
    for key, value in result.items():
      f.write(f'| {key} | {value} |\n')
  print(json.dumps(result, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())
