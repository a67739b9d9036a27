"""Formatting the run summary, and reading it from ML Metadata."""

import json

import pytest

from ganpipe.pipeline import drift_summary
from ganpipe.pipeline import run_summary
from tests.pipeline import mlmd_writer


def _summary(**kwargs):
  components = [run_summary.ComponentRun('image_example_gen', 'complete', 12.0),
                run_summary.ComponentRun('classifier_trainer', 'cached'),
                run_summary.ComponentRun('classifier_pusher', 'not run')]
  return run_summary.RunSummary('ganpipe', 'run-1', components, **kwargs)


def test_components_and_cache_line():
  text = run_summary.format_summary(_summary())
  assert 'image_example_gen' in text and '12.0 s' in text
  assert '1 of 3 components were served from the cache.' in text
  assert _summary().failed == []


def test_ingestion_line_lists_rejections_and_the_report():
  ingestion = run_summary.IngestionResult({'train': 80, 'eval': 20},
                                          {'corrupt': 2, 'wrong_size': 1}, 1, '/r/report.json')
  text = run_summary.format_summary(_summary(ingestion=ingestion))
  assert 'data: 100 images (train 80, eval 20); 3 rejected (corrupt 2, wrong_size 1); ' \
         '1 warnings' in text
  assert 'see /r/report.json' in text
  clean = run_summary.IngestionResult({'train': 5, 'eval': 1}, {}, 0, '/r/report.json')
  assert 'data: 6 images (train 5, eval 1); 0 rejected' in run_summary.format_summary(
      _summary(ingestion=clean))


def test_model_lines():
  blessed = run_summary.ModelResult('classifier', 'sparse_categorical_accuracy', 0.98, 362, True,
                                    pushed_to='/s/classifier/1')
  rejected = run_summary.ModelResult(
      'classifier', 'sparse_categorical_accuracy', 0.5, 362, False,
      reason='sparse_categorical_accuracy 0.5000 is below the minimum 0.9000')
  assert ('classifier: sparse_categorical_accuracy 0.9800 on 362 eval examples, blessed\n'
          '  pushed to /s/classifier/1') in run_summary.format_summary(_summary(models=[blessed]))
  assert ('NOT blessed (sparse_categorical_accuracy 0.5000 is below the minimum 0.9000)' in
          run_summary.format_summary(_summary(models=[rejected])))


def test_infra_validation_push_and_hub_lines():
  published = run_summary.ModelResult(
      'generator', 'frechet_classifier_distance', 5.0, None, True, infra_validated=True,
      pushed_to='/s/generator/7', published_to='/h/ganpipe/generator/1')
  text = run_summary.format_summary(_summary(models=[published]))
  assert ('  infra validation: passed\n  pushed to /s/generator/7\n'
          '  published as a TF Hub module to /h/ganpipe/generator/1') in text
  broken = run_summary.ModelResult(
      'generator', 'frechet_classifier_distance', 5.0, None, True, infra_validated=False,
      infra_reason="signature 'generate' is missing",
      not_pushed_reason='not passed: infra validation',
      not_published_reason='infra validation failed')
  text = run_summary.format_summary(_summary(models=[broken]))
  assert ("  infra validation: FAILED (signature 'generate' is missing)\n"
          '  not pushed (not passed: infra validation)\n'
          '  not published to TF Hub (infra validation failed)') in text


def test_skipped_files_and_empty_classes_are_named():
  ingestion = run_summary.IngestionResult({'train': 80, 'eval': 20}, {}, 0, '/r/report.json',
                                          skipped_files=3, empty_classes=['cats', 'dogs'])
  text = run_summary.format_summary(_summary(ingestion=ingestion))
  assert ('data: 100 images (train 80, eval 20); 0 rejected; 3 files skipped, not named as '
          'images\n  empty class folders, left out of the class map: cats, dogs\n'
          '  see /r/report.json') in text


def test_an_unchanged_model_says_so_instead_of_a_push_and_a_publication():
  unchanged = run_summary.ModelResult(
      'generator', 'frechet_classifier_distance', 5.0, 300, True, infra_validated=True,
      not_pushed_reason='version 7 at /s/generator/7 already serves this model',
      push_unchanged=True,
      not_published_reason='version 1 at /h/ganpipe/generator/1 already holds this generator',
      publish_unchanged=True)
  text = run_summary.format_summary(_summary(models=[unchanged]))
  assert ('  unchanged, not pushed (version 7 at /s/generator/7 already serves this model)\n'
          '  unchanged, not published to TF Hub (version 1 at /h/ganpipe/generator/1 already '
          'holds this generator)') in text


def test_a_distance_that_means_nothing_is_not_printed_as_a_number():
  note = ('not meaningful on 40 images per set, no more than the 128 feature dimensions; judged '
          'by the classifier score')
  small = run_summary.ModelResult('generator', 'frechet_classifier_distance', 3.1234, 40, True,
                                  details={'classifier_score': 2.5}, metric_note=note)
  text = run_summary.format_summary(_summary(models=[small]))
  assert f'generator: frechet_classifier_distance {note}, blessed\n' in text
  assert '3.1234' not in text


LABEL = {'feature': 'label_name', 'kind': 'L-infinity distance', 'value': 0.3512,
         'threshold': 0.2}
INTENSITY = {'feature': 'mean_intensity', 'kind': 'Jensen-Shannon divergence', 'value': 0.05,
             'threshold': 0.2}


def test_drift_lines_say_no_baseline_give_the_figures_and_the_verdict():
  first = drift_summary.DriftResult(1, None, [], [])
  assert 'drift: span 1: no baseline (no blessed model yet)' in run_summary.format_summary(
      _summary(drift=first))
  alike = drift_summary.DriftResult(2, 1, [dict(LABEL, value=0.02), INTENSITY], [])
  text = run_summary.format_summary(_summary(drift=alike, train_spans=[1, 2]))
  assert ('drift: span 2 vs span 1: label_name L-infinity distance 0.020 (max 0.2), '
          'mean_intensity Jensen-Shannon divergence 0.050 (max 0.2)\n') in text + '\n'
  assert 'DRIFTED' not in text and 'training window: spans 1, 2' in text
  stopped = drift_summary.DriftResult(3, 2, [LABEL, INTENSITY], ['label_name'], stopped=True)
  assert ('label_name L-infinity distance 0.351 (max 0.2), mean_intensity Jensen-Shannon '
          'divergence 0.050 (max 0.2)\n  DRIFTED: label_name; training stopped') in (
              run_summary.format_summary(_summary(drift=stopped)))
  allowed = drift_summary.DriftResult(3, 2, [LABEL], ['label_name'], allowed=True)
  assert 'DRIFTED: label_name; trained anyway (--data.allow_drift)' in (
      run_summary.format_summary(_summary(drift=allowed)))


def _drift_run(writer, run, figures, allow_drift, gate_state):
  report = writer.artifact('ganpipe.DriftReport', f'/drift/{run}', drift=json.dumps(figures))
  writer.execution('drift_validator', run, {}, {'drift_report': report})
  writer.execution('example_validation_gate', run, {}, {}, state=gate_state,
                   allow_drift=allow_drift)
  spans = [writer.artifact('Examples', f'/examples/{span}', span=span) for span in (1, 2)]
  writer.execution('transform', run, {'examples': spans}, {})


@pytest.mark.parametrize('allow_drift, gate_state, allowed, stopped', [
    (0, mlmd_writer.FAILED, False, True), (1, mlmd_writer.COMPLETE, True, False)])
def test_the_summary_reads_drift_the_gate_and_the_window_from_the_store(
    tmp_path, allow_drift, gate_state, allowed, stopped):
  writer = mlmd_writer.MlmdWriter(str(tmp_path / 'metadata.sqlite'))
  figures = {'span': 3, 'baseline_span': 2, 'measurements': [LABEL], 'drifted': ['label_name']}
  _drift_run(writer, 'run-1', figures, allow_drift, gate_state)
  summary = run_summary.collect(str(tmp_path / 'metadata.sqlite'), 'ganpipe',
                                ['drift_validator', 'example_validation_gate', 'transform'], {},
                                'image_example_gen', 'drift_validator',
                                'example_validation_gate', 'transform')
  assert summary.drift == drift_summary.DriftResult(3, 2, [LABEL], ['label_name'], allowed=allowed,
                                                  stopped=stopped)
  assert summary.train_spans == [1, 2]


def test_a_failed_baseline_resolver_is_not_mistaken_for_no_blessed_model(tmp_path):
  writer = mlmd_writer.MlmdWriter(str(tmp_path / 'metadata.sqlite'))
  writer.execution('drift_baseline_resolver', 'run-1', {}, {}, state=mlmd_writer.FAILED)
  _drift_run(writer, 'run-1', {'span': 3, 'baseline_span': None, 'measurements': [],
                               'drifted': []}, 0, mlmd_writer.COMPLETE)
  summary = run_summary.collect(str(tmp_path / 'metadata.sqlite'), 'ganpipe',
                                ['drift_validator'], {}, 'image_example_gen', 'drift_validator',
                                'example_validation_gate', 'transform', 'drift_baseline_resolver')
  assert summary.drift.baseline_failed
  assert 'drift: span 3: no baseline: its resolver FAILED, drift not measured' in (
      run_summary.format_summary(summary))
