"""Formatting the run summary."""

from ganpipe.pipeline import run_summary


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
  rejected = run_summary.ModelResult('classifier', 'sparse_categorical_accuracy', 0.5, 362, False,
                                     reason='sparse_categorical_accuracy: below 0.9')
  assert ('classifier: sparse_categorical_accuracy 0.9800 on 362 eval examples, blessed\n'
          '  pushed to /s/classifier/1') in run_summary.format_summary(_summary(models=[blessed]))
  assert 'NOT blessed (sparse_categorical_accuracy: below 0.9)' in run_summary.format_summary(
      _summary(models=[rejected]))


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
