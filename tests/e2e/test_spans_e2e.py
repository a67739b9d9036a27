"""Continuous training end to end: three spans of images arrive, and the pipeline runs after each.

Spans 1 and 2 are alike; span 3 has a shifted class balance and brighter pixels. The second run
trains on spans 1 and 2 (`--data.train_spans 2`), and a run with no new span after it is served
from the cache; the third stops for drift, naming the class distribution; run again with
`--data.allow_drift`, it trains, and the summary says so. `-s` prints the drift figures of each
run.
"""

import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from ganpipe.pipeline import nodes
from ganpipe.pipeline import run_summary
from tests import image_data

pytestmark = pytest.mark.e2e

GANPIPE = os.path.join(os.path.dirname(sys.executable), 'ganpipe')
CLASSES = (0, 1, 2)


def _write_span(root, span, per_class, offset, brighten=0):
  """`root/span-<span>/digit_<d>/<n>.png`: 8x8 digits, `brighten` added to every pixel."""
  for digit, count in zip(CLASSES, per_class):
    folder = os.path.join(root, f'span-{span}', f'digit_{digit}')
    os.makedirs(folder)
    for index, (pixels, _) in enumerate(image_data.digit_images(count, offset, [digit])):
      pixels = np.clip(pixels.astype(np.int32) + brighten, 0, 255).astype(np.uint8)
      Image.fromarray(pixels, mode='L').save(os.path.join(folder, f'{index:04d}.png'))


def _ganpipe(root, *flags):
  paths = ['--paths.pipeline_root', str(root / 'pipeline'),
           '--paths.metadata_path', str(root / 'metadata.sqlite'),
           '--paths.serving_root', str(root / 'serving'), '--paths.hub_root', str(root / 'hub')]
  data = ['--data.dataset', 'folder', '--data.data_dir', str(root / 'data'),
          '--data.image_size', '8,8', '--data.channels', '1',
          '--data.span_pattern', 'span-{SPAN}', '--data.train_spans', '2']
  result = subprocess.run([GANPIPE, 'run', '--small', *paths, *data, *flags],
                          capture_output=True, text=True, check=False, timeout=1500,
                          stdin=subprocess.DEVNULL)
  summary = run_summary.collect(str(root / 'metadata.sqlite'), 'ganpipe', list(nodes.NODE_IDS),
                                nodes.EVALUATED_MODELS, nodes.INGESTION_NODE, nodes.DRIFT_NODE,
                                nodes.GATE_NODE, nodes.TRANSFORM_NODE, nodes.DRIFT_BASELINE_NODE)
  shown = [line for line in result.stdout.splitlines()
           if line.startswith(('drift: ', '  DRIFTED: ', 'training window: '))
           or 'components were served from the cache' in line]
  shown += [line for line in result.stderr.splitlines() if line.startswith('ganpipe: error:')]
  print(f'\n$ ganpipe run ... {" ".join(flags)}  (exit code {result.returncode})\n' +
        '\n'.join(shown))
  return result, summary


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('spans')
  found = {}
  _write_span(root / 'data', 1, (60, 60, 60), offset=0)
  found['first'] = _ganpipe(root)
  _write_span(root / 'data', 2, (60, 60, 60), offset=600)
  found['second'] = _ganpipe(root)
  found['again'] = _ganpipe(root)  # no new span
  _write_span(root / 'data', 3, (59, 15, 6), offset=1200, brighten=90)
  found['third'] = _ganpipe(root)
  found['allowed'] = _ganpipe(root, '--data.allow_drift', 'true')
  found['root'] = root
  return found


def _ok(run):
  result, _ = run
  assert result.returncode == 0, result.stdout + result.stderr


def test_the_first_span_trains_alone_with_no_baseline(runs):
  _ok(runs['first'])
  result, summary = runs['first']
  assert summary.train_spans == [1]
  assert 'drift: span 1: no baseline (no blessed model yet)' in result.stdout
  assert 'training window: span 1\n' in result.stdout


def test_the_second_run_trains_on_spans_1_and_2_within_the_drift_thresholds(runs):
  _ok(runs['second'])
  result, summary = runs['second']
  # From ML Metadata: the Examples Transform read, and the transformed spans each Trainer read.
  assert summary.train_spans == [1, 2]
  store = run_summary.Store(run_summary.open_store(str(runs['root'] / 'metadata.sqlite')))
  trainers = {node: execution for node, execution in _executions(store, summary.run_id).items()
              if node.endswith('_trainer')}
  assert sorted(trainers) == ['classifier_trainer', 'gan_trainer']
  for execution in trainers.values():
    assert len(store.inputs(execution.id)['examples']) == 2
  assert summary.drift.span == 2 and summary.drift.baseline_span == 1
  assert summary.drift.drifted == [] and 'training window: spans 1, 2' in result.stdout


def test_a_run_with_no_new_span_is_served_from_the_cache(runs):
  _ok(runs['again'])
  result, summary = runs['again']
  status = {component.node_id: component.status for component in summary.components}
  for node in ('image_example_gen', 'statistics_gen', 'transform', 'classifier_trainer',
               'gan_trainer', 'classifier_evaluator'):
    assert status[node] == 'cached', (node, result.stdout)
  # Judged now against the span of the model blessed in the second run: itself.
  assert summary.drift.span == 2 and summary.drift.baseline_span == 2
  assert all(m['value'] == 0 for m in summary.drift.measurements), summary.drift


def _executions(store, run_name):
  run = store.store.get_context_by_type_and_name('pipeline_run', run_name)
  return {store.node_id(e.id, 'ganpipe'): e for e in store.store.get_executions_by_context(run.id)}


def test_the_third_span_stops_for_drift_naming_the_class_distribution(runs):
  result, summary = runs['third']
  assert result.returncode != 0
  assert re.search(r'example_validation_gate failed: span 3 drifted from span \d, which trained '
                   r'the latest blessed model, so training will not run: label_name: L-infinity '
                   r'distance 0\.\d{3} > 0\.2', result.stderr), result.stderr
  assert summary.drift.stopped and 'label_name' in summary.drift.drifted
  assert re.search(r'classifier_trainer\s+not run', result.stdout), result.stdout
  assert 'training stopped' in result.stdout


def test_allowed_the_drifted_span_trains_and_the_summary_says_so(runs):
  _ok(runs['allowed'])
  result, summary = runs['allowed']
  assert summary.drift.allowed and summary.train_spans == [2, 3]
  assert re.search(r'DRIFTED: label_name(, \w+)*; trained anyway \(--data.allow_drift\)',
                   result.stdout), result.stdout
  assert re.search(r'classifier_trainer\s+complete', result.stdout), result.stdout
