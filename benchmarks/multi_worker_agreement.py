"""Benchmark: weight agreement of two loopback MultiWorkerMirroredStrategy workers and one process.

Runs tests/models/training/multi_worker_check.py as two workers (TF_CONFIG on 127.0.0.1) and
as one process without TF_CONFIG, all on the same global batches from the same initial weights,
and reports the largest absolute weight differences after a few steps of the GAN and the MLP,
with the largest weight update for scale.

  .venv/bin/python benchmarks/multi_worker_agreement.py [--graph] [--out benchmarks/results]

Writes multi_worker_agreement.json and multi_worker_agreement.md.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.models.training import multi_worker_launcher  # noqa: E402

COLUMNS = ('model', 'worker_vs_worker', 'workers_vs_single', 'max_abs_update', 'seconds')


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--graph', action='store_true',
                      help='trace train_step with tf.function as the trainers do (slower); '
                      'eager steps otherwise, as in the test')
  parser.add_argument('--timeout', type=float, default=600.0)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()

  figures = multi_worker_launcher.run_agreement(eager=not args.graph, timeout=args.timeout)
  first = next(iter(figures.values()))
  result = {
      'benchmark': 'multi_worker_agreement',
      'setup': (f'{multi_worker_launcher.WORKERS} workers on 127.0.0.1 vs 1 process, CPU only, '
                f'global batch {first["global_batch"]}, {first["steps"]} SGD steps at learning '
                f'rate {first["learning_rate"]}'),
      'train_step': 'tf.function' if args.graph else 'eager',
      'cpus': os.cpu_count(),
      'models': figures,
  }
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'multi_worker_agreement.json'), 'w') as f:
    json.dump(result, f, indent=2)
  rows = [[str(figures[model].get(column, model)) if column in ('model', 'seconds')
           else f'{figures[model][column]:.3g}' for column in COLUMNS] for model in figures]
  with open(os.path.join(args.out, 'multi_worker_agreement.md'), 'w') as f:
    f.write(f'# MultiWorkerMirroredStrategy weight agreement\n\n{result["setup"]}, '
            f'{result["train_step"]} train_step, {result["cpus"]} CPUs. Figures are max abs '
            'weight differences; `seconds` is the wall time of the three processes together.\n\n'
            f'| {" | ".join(COLUMNS)} |\n|{"---|" * len(COLUMNS)}\n')
    for row in rows:
      f.write(f'| {" | ".join(row)} |\n')
  widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]
  for row in [list(COLUMNS)] + rows:
    print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
