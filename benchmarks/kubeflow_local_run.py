"""Benchmark: per-task wall times of the compiled Kubeflow package, run as a KFP backend would.

Compiles the small configuration (one GAN epoch) as `ganpipe compile-kubeflow` would, with the
pipeline and hub roots on gs:// placeholders and the serving root on a volume claim mounted in
every pod (on gs:// too for Vertex AI, which mounts no claim), then runs every task of the
package as a local subprocess in dependency order, each given the ExecutorInput the open-source
KFP driver (2.17.0) builds (ganpipe/kubeflow/local_launcher/, `--backend kfp`), or Vertex AI's
(`--backend vertex`).
Up to --max-parallel-tasks independent tasks run at once (default: one per CPU); the times
include each subprocess's start-up (TensorFlow and TFX imports), which a pod pays too.

  .venv/bin/python benchmarks/kubeflow_local_run.py [--gan-epochs 1] [--max-parallel-tasks N]
      [--backend kfp|vertex] [--out benchmarks/results]

Writes kubeflow_local_run.json and kubeflow_local_run.md.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganpipe.kubeflow import compile as kubeflow_compile  # noqa: E402
from ganpipe.kubeflow.local_launcher import launcher as local_launcher  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402
from ganpipe.pipeline import overrides as config_overrides  # noqa: E402

REMOTE = 'gs://bucket/ganpipe'
VOLUME_CLAIM, MOUNT = 'ganpipe-data', '/mnt/ganpipe'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--gan-epochs', type=int, default=1)
  parser.add_argument('--max-parallel-tasks', type=int, default=os.cpu_count() or 1)
  parser.add_argument('--backend', choices=sorted(local_launcher.BACKENDS), default='kfp')
  parser.add_argument('--workdir', default='', help='keep the run here (default: a temp dir)')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  overrides = {'kubeflow.image': 'registry.example.com/ganpipe:benchmark',
               'paths.pipeline_root': f'{REMOTE}/pipeline', 'paths.hub_root': f'{REMOTE}/hub',
               'paths.serving_root': f'{REMOTE}/serving', 'gan.epochs': args.gan_epochs}
  if args.backend == 'kfp':
    overrides.update({'kubeflow.volume_claim': VOLUME_CLAIM, 'kubeflow.volume_mount_path': MOUNT,
                      'paths.serving_root': f'{MOUNT}/serving'})
  config = config_overrides.with_overrides(config_lib.get_config(small=True), overrides)
  workdir = args.workdir or tempfile.mkdtemp(prefix='ganpipe-kfp-local-')
  started = time.monotonic()
  spec_path = kubeflow_compile.compile_pipeline(config, os.path.join(workdir, 'ganpipe.json'))
  compile_seconds = round(time.monotonic() - started, 1)
  # The package Kubeflow Pipelines runs; Vertex AI runs the PipelineJob.
  job = local_launcher.load_job(kubeflow_compile.kfp_package_path(spec_path)
                                if args.backend == 'kfp' else spec_path)
  paths = local_launcher.path_map(job, local_launcher.local_roots(config.paths, workdir),
                                  local_launcher.local_volumes(config.kubeflow, workdir))
  started = time.monotonic()
  run = local_launcher.LocalLauncher(job, os.path.join(workdir, 'logs'), paths,
                                    backend=args.backend, pipeline_root=config.paths.pipeline_root,
                                    max_parallel_tasks=args.max_parallel_tasks).run()
  run_seconds = round(time.monotonic() - started, 1)

  result = {
      'benchmark': 'kubeflow_local_run',
      'backend': args.backend,
      'config': 'small, ' + ', '.join(f'{k}={v}' for k, v in overrides.items()
                                      if not k.startswith('paths.')),
      'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()},
      'max_parallel_tasks': args.max_parallel_tasks,
      'compile_seconds': compile_seconds,
      'run_seconds': run_seconds,
      'succeeded': run.succeeded,
      'tasks': [{'task': t.task, 'kind': t.kind, 'status': t.status, 'seconds': t.seconds,
                 'driver_seconds': t.driver_seconds} for t in run.tasks],
  }
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'kubeflow_local_run.json'), 'w') as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(args.out, 'kubeflow_local_run.md'), 'w') as f:
    f.write(f'# Compiled Kubeflow package, run locally as the {args.backend} backend would '
            f'({os.cpu_count()} CPUs)\n\n'
            f'Config: {result["config"]}. Up to {args.max_parallel_tasks} independent tasks '
            'run at once, each after its upstream tasks; the table lists them as they started.'
            '\n\n'
            '| task | kind | status | seconds |\n|---|---|---|---|\n')
    for task in result['tasks']:
      seconds = task['seconds']
      if task['driver_seconds'] is not None:
        seconds = f'{seconds} (driver {task["driver_seconds"]})'
      f.write(f'| {task["task"]} | {task["kind"]} | {task["status"]} | {seconds} |\n')
    f.write(f'| **total (wall)** | | | **{run_seconds}** |\n\n'
            f'Compiling the spec took {compile_seconds} s more.\n')
  print(json.dumps(result, indent=2))
  print(f'spec, outputs and task logs: {workdir}')
  for task in run.tasks:
    if task.error:
      print(task.error, file=sys.stderr)
  return 0 if run.succeeded else 1


if __name__ == '__main__':
  sys.exit(main())
