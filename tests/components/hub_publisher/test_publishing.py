"""Publishing's plain parts: names, versions, leftovers of crashed publishes, and the README."""

import os
import time

import pytest
import tensorflow as tf

from ganpipe.components import versioning
from ganpipe.components.hub_publisher import publishing

CARD = publishing.ModuleCard('ganpipe', 'generator', 'digits', 'dense')
SHAPES = publishing.GeneratorShapes(4, (8, 8, 1))
METRICS = {'num_samples': 300, 'frechet_classifier_distance': 12.345,
           'real_frechet_classifier_distance': 1.5, 'classifier_score': 7.25,
           'real_classifier_score': 9.5, 'blessed': True, 'reasons': []}


@pytest.mark.parametrize('field, value, match', [
    ('publisher', 'a/b', 'publisher must be letters, digits'),
    ('module_name', '..', 'module_name must be letters, digits'),
    ('module_name', '', 'module_name must be letters, digits'),
    ('dataset', 'x --> y', 'dataset must be one non-empty line'),
    ('architecture', 'two\nlines', 'architecture must be one non-empty line'),
    ('license', ' ', 'license must be one non-empty line'),
])
def test_card_rejects_bad_values(field, value, match):
  values = dict(publisher='ganpipe', module_name='generator', dataset='digits',
                architecture='dense')
  values[field] = value
  with pytest.raises(ValueError, match=match):
    publishing.ModuleCard(**values)


def test_next_version_is_above_every_version_and_archive(tmp_path):
  assert publishing.next_version(str(tmp_path / 'absent')) == 1
  assert publishing.next_version(str(tmp_path)) == 1
  for name in ('1', '3', 'notes', '10-old', '.publishing-12-abc'):
    os.makedirs(tmp_path / name)
  assert publishing.next_version(str(tmp_path)) == 4
  (tmp_path / '7.tar.gz').write_bytes(b'')
  assert publishing.next_version(str(tmp_path)) == 8


def test_stale_leftovers_are_removed_and_versions_kept(tmp_path):
  later = time.time() + versioning.STALE_AFTER_SECONDS + 60
  for name in ('1', '2', '.publishing-3-abc/3/variables',
               versioning.temporary_name(publishing.TEMP_PREFIX, 4) + '/4/variables'):
    os.makedirs(tmp_path / name)
  for name in ('1.tar.gz', '3.tar.gz', 'notes.txt'):
    (tmp_path / name).write_bytes(b'x')
  publishing.remove_stale_leftovers(str(tmp_path), now=later)
  # 3.tar.gz was placed by a publish that died before its folder was renamed into place.
  assert sorted(os.listdir(tmp_path)) == ['1', '1.tar.gz', '2', 'notes.txt']


def test_a_publish_still_running_elsewhere_is_not_taken_for_a_leftover(tmp_path):
  # Another pipeline run is publishing version 3: its folder is being written, and its archive
  # is in place a moment before the folder is renamed.
  running = versioning.temporary_name(publishing.TEMP_PREFIX, 3)
  os.makedirs(tmp_path / running / '3' / 'variables')
  (tmp_path / '3.tar.gz').write_bytes(b'x')
  publishing.remove_stale_leftovers(str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == sorted(['3.tar.gz', running])


def test_readme_is_tfhub_markdown_with_the_metrics(tmp_path):
  readme = publishing.render_readme(CARD, 3, '/hub/ganpipe/generator/3.tar.gz', SHAPES, METRICS,
                                    '/hub/ganpipe/generator/3')
  lines = readme.splitlines()
  assert lines[0] == '# Module ganpipe/generator/3'
  for comment in ('<!-- asset-path: /hub/ganpipe/generator/3.tar.gz -->',
                  '<!-- task: image-generator -->', '<!-- fine-tunable: true -->',
                  '<!-- format: saved_model_2 -->', '<!-- license: Apache-2.0 -->'):
    assert comment in lines
  # Metadata comes after a one-line description and before the first section.
  assert lines.index('<!-- asset-path: /hub/ganpipe/generator/3.tar.gz -->') < lines.index(
      '## Overview')
  for section in ('## Overview', '## Dataset', '## Evaluation', '## Usage', '## License'):
    assert section in lines
  assert '`[batch, 4]`' in readme and '`[batch, 8, 8, 1]`' in readme
  assert '| Fréchet classifier distance (lower is better) | 12.35 | 1.50 |' in readme
  assert '| Classifier score (higher is better) | 7.25 | 9.50 |' in readme
  assert 'on 300 generated images' in readme
  assert "hub.load('/hub/ganpipe/generator/3')" in readme
  assert "hub.KerasLayer('/hub/ganpipe/generator/3', trainable=True)" in readme
  assert 'tf.random.normal([16, 4])' in readme
  assert 'Trained on digits.' in readme
  assert 'previously blessed' not in readme


def test_readme_says_how_many_images_generate_makes_per_call():
  readme = publishing.render_readme(CARD, 1, 'a', SHAPES, METRICS, 'b')
  assert ('`generate` makes at\nmost 1,024 images per call and refuses more' in readme)


def test_readme_describes_the_dataset_when_told():
  card = publishing.ModuleCard('ganpipe', 'generator', 'flowers', 'dcgan',
                               dataset_description='Trained on the image folder `flowers`: '
                               '1,234 images in 5 classes.')
  readme = publishing.render_readme(card, 1, 'a', SHAPES, METRICS, 'b')
  assert '## Dataset\n\nTrained on the image folder `flowers`: 1,234 images in 5 classes.\n' in (
      readme)
  assert '<!-- dataset: flowers -->' in readme


def test_readme_gives_no_distance_that_means_nothing():
  metrics = {**METRICS, 'num_samples': 40, 'feature_dimensions': 128,
             'distance_meaningful': False, 'baseline_frechet_classifier_distance': 20.0}
  readme = publishing.render_readme(CARD, 1, 'a', SHAPES, metrics, 'b')
  assert ('| Fréchet classifier distance (lower is better) | not meaningful | not meaningful |'
          in readme)
  assert '12.35' not in readme and 'previously blessed' not in readme
  assert 'judged by its classifier score alone' in readme
  assert '| Classifier score (higher is better) | 7.25 | 9.50 |' in readme


def test_readme_mentions_the_baseline_when_measured():
  readme = publishing.render_readme(CARD, 1, 'a', SHAPES,
                                    {**METRICS, 'baseline_frechet_classifier_distance': 20.0}, 'b')
  assert "previously blessed generator's distance, measured in the same run, was 20.00" in readme


def test_readme_needs_the_evaluator_metrics():
  metrics = {k: v for k, v in METRICS.items() if k != 'real_classifier_score'}
  with pytest.raises(ValueError, match='metrics lack real_classifier_score'):
    publishing.render_readme(CARD, 1, 'a', SHAPES, metrics, 'b')


def test_a_savedmodel_without_the_reusable_api_is_refused(tmp_path):
  module = tf.Module()
  module.serve = tf.function(lambda noise: {'images': tf.reshape(noise, [-1, 2, 2, 1])},
                             input_signature=[tf.TensorSpec([None, 4], tf.float32)])
  tf.saved_model.save(module, str(tmp_path / 'plain'), signatures={'serving_default': module.serve})
  with pytest.raises(ValueError, match='is not a reusable SavedModel'):
    publishing.read_shapes(str(tmp_path / 'plain'))
  with pytest.raises(ValueError, match='is not a reusable SavedModel'):
    publishing.publish(str(tmp_path / 'plain'), str(tmp_path / 'hub'), CARD, METRICS)
  assert not os.path.exists(tmp_path / 'hub')  # refused before anything was written
