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
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfx.dsl.components.base import base_beam_executor  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402
from tfx.utils import proto_utils  # noqa: E402

from ganpipe.components import artifacts  # noqa: E402
from ganpipe.components.image_example_gen import component, executor, report  # noqa: E402
from ganpipe.components.image_example_gen.sources import builtin  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402


class MemorySampler(threading.Thread):
  """Peak RSS of this process alone and of this process plus all its descendants."""

  def __init__(self, interval: float = 0.2):
    super().__init__(daemon=True)
    self.interval = interval
    self.peak_self = 0
    self.peak_tree = 0
    self._done = threading.Event()

  def run(self):
    me = psutil.Process()
    while not self._done.is_set():
      try:
        own = me.memory_info().rss
        tree = own + sum(child.memory_info().rss for child in me.children(recursive=True))
      except psutil.Error:
        continue
      self.peak_self = max(self.peak_self, own)
      self.peak_tree = max(self.peak_tree, tree)
      time.sleep(self.interval)

  def stop(self):
    self._done.set()
    self.join()


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workers', type=int, default=2)
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
      direct_num_workers=args.workers).pipeline_args())

  sampler = MemorySampler()
  baseline = psutil.Process().memory_info().rss
  sampler.start()
  started = time.monotonic()
  executor.Executor(context).Do({}, {k: [v] for k, v in outputs.items()}, exec_properties)
  seconds = time.monotonic() - started
  sampler.stop()

  ingested = report.load(outputs['ingestion_report'].uri)
  images = ingested['accepted'] + ingested['rejected']
  result = {
      'benchmark': 'ingestion_throughput',
      'dataset': 'fashion-mnist (IDX, gzip)',
      'records': images,
      'accepted_by_split': ingested['accepted_by_split'],
      'rejected': ingested['rejected'],
      'beam': f'DirectRunner multi_processing, {args.workers} workers',
      'cpus': os.cpu_count(),
      'wall_seconds': round(seconds, 1),
      'images_per_second': round(images / seconds, 1),
      'peak_rss_executor_mb': round(sampler.peak_self / 2**20, 1),
      'peak_rss_process_tree_mb': round(sampler.peak_tree / 2**20, 1),
      'rss_before_run_mb': round(baseline / 2**20, 1),
      'dataset_decoded_mb': round(images * 28 * 28 / 2**20, 1),
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
