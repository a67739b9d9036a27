"""Publishing's plain parts: names, versions, leftovers of crashed publishes, and the README."""

import os
import time

import pytest
import tensorflow as tf

from ganpipe.components import versioning
from ganpipe.components.hub_publisher import module_files
from ganpipe.components.hub_publisher import publishing

CARD = publishing.ModuleCard('ganpipe', 'generator', 'digits', 'dense')
SHAPES = publishing.GeneratorShapes(4, (8, 8, 1))
METRICS = {'num_samples': 300, 'frechet_classifier_distance': 12.345,
           'real_frechet_classifier_distance': 1.5, 'classifier_score': 7.25,
           'real_classifier_score': 9.5, 'blessed': True, 'reasons': []}


@pytest.mark.parametrize('field, value, match', [
    ('publisher', 'a/b', 'publisher must be lower-case letters, digits and -'),
    ('publisher', 'My_Team', 'publisher must be lower-case letters, digits and -'),
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


def test_next_version_is_above_every_version_archive_and_doc(tmp_path):
  assert publishing.next_version(str(tmp_path / 'absent')) == 1
  assert publishing.next_version(str(tmp_path)) == 1
  for name in ('1', '3', 'notes', '10-old', '.publishing-12-abc'):
    os.makedirs(tmp_path / name)
  assert publishing.next_version(str(tmp_path)) == 4
  (tmp_path / '7.tar.gz').write_bytes(b'')
  assert publishing.next_version(str(tmp_path)) == 8
  (tmp_path / '9.md').write_text('# Module ganpipe/generator/9')
  assert publishing.next_version(str(tmp_path)) == 10


def test_stale_leftovers_are_removed_and_versions_kept(tmp_path):
  later = time.time() + versioning.STALE_AFTER_SECONDS + 60
  for name in ('1', '2', '.publishing-3-abc/3/variables',
               versioning.temporary_name(publishing.TEMP_PREFIX, 4) + '/4/variables'):
    os.makedirs(tmp_path / name)
  for name in ('1.tar.gz', '1.md', '3.tar.gz', '3.md', 'notes.txt', 'notes.md'):
    (tmp_path / name).write_bytes(b'x')
  publishing.remove_stale_leftovers(str(tmp_path), now=later)
  # 3.tar.gz and 3.md were placed by a publish that died before its folder was renamed into place.
  assert sorted(os.listdir(tmp_path)) == ['1', '1.md', '1.tar.gz', '2', 'notes.md', 'notes.txt']


def test_a_publish_still_running_elsewhere_is_not_taken_for_a_leftover(tmp_path):
  # Another pipeline run is publishing version 3: its folder is being written, and its archive
  # is in place a moment before the folder is renamed.
  running = versioning.temporary_name(publishing.TEMP_PREFIX, 3)
  os.makedirs(tmp_path / running / '3' / 'variables')
  (tmp_path / '3.tar.gz').write_bytes(b'x')
  publishing.remove_stale_leftovers(str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == sorted(['3.tar.gz', running])


def test_readme_is_tfhub_markdown_with_the_metrics_and_allowed_tags():
  readme = publishing.render_readme(CARD, 3, SHAPES, METRICS, 'https://models.example.org/hub/')
  lines = readme.splitlines()
  assert lines[0] == '# Module ganpipe/generator/3'
  asset = 'https://models.example.org/hub/ganpipe/generator/3.tar.gz'
  # The tags, in tfhub.dev's ids: Apache-2.0 is apache-2.0, the dense GAN a gan, and digits has
  # no id, so no dataset tag.
  assert [line for line in lines[:lines.index('## Overview')] if line.startswith('<!--')] == [
      f'<!-- asset-path: {asset} -->', '<!-- task: image-generator -->',
      '<!-- fine-tunable: true -->', '<!-- format: saved_model_2 -->',
      '<!-- license: apache-2.0 -->', '<!-- network-architecture: gan -->']
  for section in ('## Overview', '## Dataset', '## Evaluation', '## Usage', '## License'):
    assert section in lines
  assert '`[batch, 4]`' in readme and '`[batch, 8, 8, 1]`' in readme
  assert '| Fréchet classifier distance (lower is better) | 12.35 | 1.50 |' in readme
  assert '| Classifier score (higher is better) | 7.25 | 9.50 |' in readme
  assert 'on 300 generated images' in readme
  assert f"hub.load('{asset}')" in readme
  assert f"hub.KerasLayer('{asset}', trainable=True)" in readme
  assert 'tf.random.normal([16, 4])' in readme
  assert 'previously blessed' not in readme
  assert lines[-1] == 'Apache-2.0'  # the License section names the license as given


def test_readme_without_asset_url_leaves_the_tag_out_and_uses_the_relative_handle():
  readme = publishing.render_readme(CARD, 2, SHAPES, METRICS)
  assert 'asset-path' not in readme.split('## Overview')[0]
  assert "hub.load('ganpipe/generator/2')" in readme
  assert '`--publish.hub_asset_url URL`' in readme


def test_readme_says_how_many_images_generate_makes_per_call():
  readme = publishing.render_readme(CARD, 1, SHAPES, METRICS)
  assert ('`generate` makes at\nmost 1,024 images per call and refuses more' in readme)


def test_readme_describes_the_dataset_when_told():
  card = publishing.ModuleCard('ganpipe', 'generator', 'flowers', 'dcgan',
                               dataset_description='Trained on the image folder `flowers`: '
                               '1,234 images in 5 classes.')
  readme = publishing.render_readme(card, 1, SHAPES, METRICS)
  assert '## Dataset\n\nTrained on the image folder `flowers`: 1,234 images in 5 classes.\n' in (
      readme)
  assert readme.splitlines()[2].startswith('A dcgan GAN generator trained on flowers:')
  assert '<!-- dataset:' not in readme  # no tfhub.dev dataset id fits a user's folder


def test_readme_gives_no_distance_that_means_nothing():
  metrics = {**METRICS, 'num_samples': 40, 'feature_dimensions': 128,
             'distance_meaningful': False, 'baseline_frechet_classifier_distance': 20.0}
  readme = publishing.render_readme(CARD, 1, SHAPES, metrics)
  assert ('| Fréchet classifier distance (lower is better) | not meaningful | not meaningful |'
          in readme)
  assert '12.35' not in readme and 'previously blessed' not in readme
  assert 'judged by its classifier score alone' in readme
  assert '| Classifier score (higher is better) | 7.25 | 9.50 |' in readme


def test_readme_mentions_the_baseline_when_measured():
  readme = publishing.render_readme(CARD, 1, SHAPES,
                                    {**METRICS, 'baseline_frechet_classifier_distance': 20.0})
  assert "previously blessed generator's distance, measured in the same run, was 20.00" in readme


def test_readme_needs_the_evaluator_metrics():
  metrics = {k: v for k, v in METRICS.items() if k != 'real_classifier_score'}
  with pytest.raises(ValueError, match='metrics lack real_classifier_score'):
    publishing.render_readme(CARD, 1, SHAPES, metrics)


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


@pytest.mark.parametrize('path, is_own', [
    ('saved_model.pb', True), ('fingerprint.pb', True), ('keras_metadata.pb', True),
    ('variables/variables.index', True), ('variables/variables.data-00000-of-00001', True),
    ('assets/vocab.txt', True), ('assets.extra/tf_serving_warmup_requests', True),
    ('README.md', False), ('variables/notes.txt', False), ('.DS_Store', False),
    ('assets/.hidden', False), ('checkpoint', False), ('variables/sub/variables.index', False)])
def test_only_the_saved_models_own_files_belong_to_the_module(path, is_own):
  assert module_files.is_saved_model_file(path) is is_own


def test_an_existing_publisher_page_is_kept(tmp_path):
  page = tmp_path / 'ganpipe' / 'ganpipe.md'
  assert publishing.write_publisher_page(str(tmp_path), CARD) == str(page)
  assert page.read_text().startswith('# Publisher ganpipe\n')
  page.write_text('# Publisher ganpipe\nOur team, edited by hand.\n')
  publishing.write_publisher_page(str(tmp_path), CARD)
  assert page.read_text() == '# Publisher ganpipe\nOur team, edited by hand.\n'
  assert os.listdir(page.parent) == ['ganpipe.md']  # no staging file left


@pytest.mark.parametrize('asset_url, make_archive, match', [
    ('/srv/hub', True, 'must be an http:// or https:// URL'),
    ('gs://bucket/hub', True, 'must be an http:// or https:// URL'),
    ('https://github.com/me/hub', True, "github.com's robots.txt forbids"),
    ('https://h.org/hub?sig=1', True, 'without query'),
    ('https://h.org/hub', False, 'needs make_archive'),
])
def test_bad_asset_urls_are_refused_before_anything_is_written(tmp_path, asset_url, make_archive,
                                                               match):
  with pytest.raises(ValueError, match=match):
    publishing.publish(str(tmp_path / 'model'), str(tmp_path / 'hub'), CARD, METRICS,
                       make_archive=make_archive, asset_url=asset_url)
  assert not os.path.exists(tmp_path / 'hub')
