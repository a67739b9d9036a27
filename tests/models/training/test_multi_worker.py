"""Two loopback workers under MultiWorkerMirroredStrategy train like one process on their batch."""

import json

import pytest

from tests.models.training import multi_worker_launcher

MODELS = multi_worker_launcher.MODELS
# Both workers apply the same all-reduced gradients, so they should agree to the bit.
WORKER_TOLERANCE = 1e-6
# Against one process only the order of the float32 sums differs, ~1e-7 of weights of order 1.
# A broken step (a worker's gradient left out of the all-reduce, a loss averaged over the local
# rather than the global batch) is off by a large fraction of the update. 1e-3 of the update
# lies orders of magnitude from both.
RELATIVE_TOLERANCE = 1e-3
# Three workers' TensorFlow start-ups on 2 shared CPUs take most of the time.
TIMEOUT_SECONDS = 240


@pytest.fixture(scope='module')
def figures(tmp_path_factory):
  """Both models trained in the same three processes, to pay TensorFlow's start-up once."""
  results = multi_worker_launcher.run_agreement(
      MODELS, eager=True, timeout=TIMEOUT_SECONDS,
      workdir=str(tmp_path_factory.mktemp('multi_worker')))
  for result in results.values():
    print(json.dumps(result), flush=True)
  return results


@pytest.mark.e2e
@pytest.mark.parametrize('model', MODELS)
def test_workers_train_with_multi_worker_strategy_over_two_replicas(figures, model):
  result = figures[model]
  for worker in ('worker0', 'worker1'):
    assert result['multi_worker'][worker], result['strategies']
    assert result['replicas'][worker] == 2, result['replicas']
  assert not result['multi_worker']['single'] and result['replicas']['single'] == 1, result


@pytest.mark.e2e
@pytest.mark.parametrize('model', MODELS)
def test_workers_end_with_identical_weights(figures, model):
  result = figures[model]
  assert result['initial_worker_vs_single'] == 0.0, 'the runs did not start from equal weights'
  assert result['worker_vs_worker'] <= WORKER_TOLERANCE, (
      f'{model}: max abs difference worker 0 vs worker 1 {result["worker_vs_worker"]:.3g} > '
      f'{WORKER_TOLERANCE:g} (weights moved by up to {result["max_abs_update"]:.3g})')


@pytest.mark.e2e
@pytest.mark.parametrize('model', MODELS)
def test_workers_match_a_single_process_on_the_same_global_batch(figures, model):
  result = figures[model]
  update = result['max_abs_update']
  assert update > 1e-3, f'{model}: the steps barely moved the weights ({update:.3g})'
  tolerance = RELATIVE_TOLERANCE * update
  assert result['workers_vs_single'] <= tolerance, (
      f'{model}: max abs difference workers vs single process '
      f'{result["workers_vs_single"]:.3g} > {tolerance:.3g} = {RELATIVE_TOLERANCE:g} x the '
      f'max abs update {update:.3g}')
