"""A published module against tfhub.dev's validator's rules (tfhub_rules.py, at the commit named
there): the documentation's tags and places, the publisher page, the archive's contents, and an
asset that downloads from its asset-path and loads, as the validator's smoke test and hub.load
fetch it. The checker itself is tried on what the pipeline published before (issue 26)."""

import contextlib
import http.server
import io
import os
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from ganpipe.components.hub_publisher import publishing
from ganpipe.components.hub_publisher import tfhub_metadata
from ganpipe.components.image_example_gen import options as ingestion
from ganpipe.models import hparams
from ganpipe.models.gan import model as model_lib
from ganpipe.models.gan import training as gan_training
from tests.components.hub_publisher import tfhub_checker
from tests.components.hub_publisher import tfhub_rules

SHAPE, LATENT = (8, 8, 1), 4
METRICS = {'num_samples': 300, 'frechet_classifier_distance': 12.345,
           'real_frechet_classifier_distance': 1.5, 'classifier_score': 7.25,
           'real_classifier_score': 9.5}
CARD = publishing.ModuleCard('ganpipe', 'generator', 'digits', 'dense')
MODULE_FILES = ['fingerprint.pb', 'saved_model.pb', 'variables/variables.data-00000-of-00001',
                'variables/variables.index']


@pytest.fixture(scope='module')
def saved_model(tmp_path_factory):
  """A dense generator as Trainer[gan] exports it, with what else a trainer might leave there."""
  path = tmp_path_factory.mktemp('trainer') / 'Format-Serving'
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator(model_lib.DENSE, LATENT, SHAPE)
  generator(tf.random.normal([16, LATENT]), training=True)
  gan_training.export_generator(generator, LATENT, str(path))
  (path / 'README.md').write_text('notes on this export')
  (path / '.DS_Store').write_bytes(b'\0')
  (path / 'variables' / 'notes.txt').write_text('not a variable')
  return str(path)


@pytest.fixture(autouse=True)
def _hub_cache(tmp_path, monkeypatch):
  monkeypatch.setenv('TFHUB_CACHE_DIR', str(tmp_path / 'tfhub_cache'))


@contextlib.contextmanager
def _http_server(handler_class):
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler_class)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()
    thread.join()


def _files_under(directory):
  class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, directory=str(directory), **kwargs)

    def log_message(self, *args):  # pylint: disable=arguments-differ
      pass
  return Handler


def _tar_names(path):
  with tarfile.open(path) as archive:
    return sorted(m.name for m in archive.getmembers() if m.isfile())


def _images(module, noise):
  return module.signatures['serving_default'](noise=noise)['images'].numpy()


def test_a_published_module_passes_and_its_asset_downloads_and_loads(saved_model, tmp_path):
  hub_root = tmp_path / 'site' / 'hub'
  with _http_server(_files_under(tmp_path / 'site')) as server:
    publication = publishing.publish(saved_model, str(hub_root), CARD, METRICS,
                                     asset_url=f'{server}/hub/')
    assert tfhub_checker.check_documentation(str(hub_root), 'ganpipe/generator/1.md') == []
    assert tfhub_checker.check_documentation(str(hub_root), 'ganpipe/ganpipe.md') == []
    asset = tfhub_checker.asset_path(str(hub_root), 'ganpipe/generator/1.md')
    assert asset == f'{server}/hub/ganpipe/generator/1.tar.gz'
    assert tfhub_checker.check_asset(asset) == []
    downloaded = hub.load(asset)  # the usage snippets' handle
  doc = open(publication.doc_path, encoding='utf-8').read()
  assert f"hub.load('{asset}')" in doc and f"hub.KerasLayer('{asset}', trainable=True)" in doc
  assert str(tmp_path) not in doc
  noise = tf.random.normal([5, LATENT], seed=3)
  np.testing.assert_allclose(downloaded(noise).numpy(),
                             _images(tf.saved_model.load(saved_model), noise), atol=1e-6)


def test_the_folder_and_archive_hold_only_the_saved_models_files(saved_model, tmp_path):
  publication = publishing.publish(saved_model, str(tmp_path), CARD, METRICS)
  assert _tar_names(publication.archive_path) == MODULE_FILES
  with open(publication.archive_path, 'rb') as f:
    assert tfhub_checker.check_archive(f) == []
  in_folder = sorted(os.path.relpath(os.path.join(d, n), publication.path)
                     for d, _, names in os.walk(publication.path) for n in names)
  assert in_folder == MODULE_FILES
  assert sorted(os.listdir(publication.path)) == [
      'assets', 'fingerprint.pb', 'saved_model.pb', 'variables']


def test_without_an_asset_url_only_the_asset_path_is_missing_and_the_card_says_how(
    saved_model, tmp_path, monkeypatch):
  publication = publishing.publish(saved_model, str(tmp_path / 'hub'), CARD, METRICS)
  assert tfhub_checker.check_documentation(str(tmp_path / 'hub'), 'ganpipe/generator/1.md') == [
      "missing required tags: ['asset-path']"]
  doc = open(publication.doc_path, encoding='utf-8').read()
  assert '`--publish.hub_asset_url URL`' in doc and '`URL/ganpipe/generator/1.tar.gz`' in doc
  assert str(tmp_path) not in doc
  assert "hub.load('ganpipe/generator/1')" in doc
  monkeypatch.chdir(tmp_path / 'hub')  # the handle is relative to the hub root
  noise = tf.random.normal([2, LATENT], seed=5)
  np.testing.assert_allclose(hub.load('ganpipe/generator/1')(noise).numpy(),
                             _images(tf.saved_model.load(saved_model), noise), atol=1e-6)


@pytest.mark.parametrize('architecture', hparams.GAN_ARCHITECTURES)
@pytest.mark.parametrize('dataset', ingestion.SOURCES)
def test_every_architecture_and_dataset_gets_only_allowed_tags(tmp_path, architecture, dataset):
  card = publishing.ModuleCard('ganpipe', 'generator', dataset, architecture)
  doc = tmp_path / 'ganpipe' / 'generator' / '1.md'
  os.makedirs(doc.parent)
  doc.write_text(publishing.render_readme(card, 1, publishing.GeneratorShapes(LATENT, SHAPE),
                                          METRICS, 'https://models.example.org/hub'))
  (tmp_path / 'ganpipe' / 'ganpipe.md').write_text(
      tfhub_metadata.render_publisher_page('ganpipe'))
  assert tfhub_checker.check_documentation(str(tmp_path), 'ganpipe/generator/1.md') == []
  tags, _ = tfhub_checker.parse_tags(doc.read_text().split('\n'))
  assert tags['network-architecture'] == {'dense': {'gan'}, 'dcgan': {'gan', 'cnn'}}[architecture]
  assert 'dataset' not in tags  # left out: no id in tags/dataset.yaml fits (below)
  assert tags['license'] == {'apache-2.0'}


def test_the_tag_maps_use_only_listed_ids_and_leave_out_what_is_not_listed():
  values = tfhub_rules.TAG_VALUES
  assert tfhub_metadata.TASK in values['task']
  assert tfhub_metadata.FORMAT in tfhub_rules.FORMATS
  assert set(tfhub_metadata.LICENSE_TAGS.values()) <= set(values['license'])
  for tags in tfhub_metadata.ARCHITECTURE_TAGS.values():
    assert tags and set(tags) <= set(values['network-architecture'])
  # Our own names are not ids there, which is why they are mapped or left out, not copied.
  assert not {'dense', 'dcgan', 'mlp'} & set(values['network-architecture'])
  assert not ({*ingestion.SOURCES, 'mnist', 'uci-digits'} & set(values['dataset']))
  assert tfhub_metadata.DATASET_TAGS == {source: () for source in ingestion.SOURCES}
  assert 'Apache-2.0' not in values['license']


@pytest.mark.parametrize('license_name, tag', [
    ('Apache-2.0', 'apache-2.0'), ('MIT', 'mit'), ('bsd-3-clause', 'bsd-3-clause'),
    ('CC-BY-NC-4.0', 'cc-by-nc-4.0'), ('CC0-1.0', None), ('All rights reserved', None)])
def test_licenses_map_onto_listed_ids_or_are_left_out(license_name, tag):
  tags = tfhub_metadata.metadata_tags('dense', 'digits', license_name, None)
  assert [v for k, v in tags if k == 'license'] == ([tag] if tag else [])


# What HubPublisher wrote before issue 26, as the issue quotes the validator on it.
_OLD_DOC = '''# Module ganpipe/generator/1

A dense GAN generator trained on digits: noise of size 4 to 8x8x1 images.

<!-- asset-path: {asset} -->
<!-- task: image-generator -->
<!-- fine-tunable: true -->
<!-- format: saved_model_2 -->
<!-- license: Apache-2.0 -->
<!-- network-architecture: dense -->
<!-- dataset: digits -->

## Overview
'''


def test_the_checker_finds_what_the_issue_lists(saved_model, tmp_path):
  docs = tmp_path / 'docs'
  os.makedirs(docs / 'ganpipe' / 'generator')
  (docs / 'ganpipe' / 'generator' / '1.md').write_text(
      _OLD_DOC.format(asset=tmp_path / '1.tar.gz'))
  assert tfhub_checker.check_documentation(str(docs), 'ganpipe/generator/1.md') == [
      'no publisher page ganpipe/ganpipe.md',
      "dataset: ['digits'] not in its tags/*.yaml list",
      "license: ['Apache-2.0'] not in its tags/*.yaml list",
      "network-architecture: ['dense'] not in its tags/*.yaml list"]
  for unfetchable in (str(tmp_path / '1.tar.gz'), 'gs://bucket/hub/ganpipe/generator/1.tar.gz'):
    (problem,) = tfhub_checker.check_asset(unfetchable)
    assert problem.startswith(f'the asset {unfetchable} cannot be downloaded')
  old_archive = io.BytesIO()
  with tarfile.open(fileobj=old_archive, mode='w:gz') as archive:
    for name in sorted(os.listdir(saved_model)):  # README.md and all, as it was archived
      archive.add(os.path.join(saved_model, name), arcname=name)
  old_archive.seek(0)
  assert tfhub_checker.check_archive(old_archive) == [
      'invalid file path: .DS_Store', 'not a SavedModel file: README.md',
      'not a SavedModel file: variables/notes.txt']


def test_the_checker_refuses_tags_it_has_no_list_for_and_bad_assets():
  tags = {'asset-path': {'https://github.com/u/r/raw/m.tar.gz'}, 'task': {'generator'},
          'fine-tunable': {'true'}, 'format': {'saved_model_3'}, 'language': {'en'},
          'license': {'mit', 'apache-2.0'}, 'size': {'small'}}
  assert tfhub_checker.check_tags(tags, tfhub_rules.MODULE_REQUIRED_TAGS,
                                  tfhub_rules.MODULE_OPTIONAL_TAGS) == [
      "unsupported tags: ['size']", "tags given more than once: ['license']",
      'language: its allowed values are not recorded in tfhub_rules.py',
      "task: ['generator'] not in its tags/*.yaml list",
      "task: ['generator'] do not start with one of ('image-', 'text-', 'audio-', 'video-')",
      "format: ['saved_model_3'] is not one of ('hub', 'saved_model', 'saved_model_2')",
      'asset-path https://github.com/u/r/raw/m.tar.gz is on github.com, whose robots.txt '
      'forbids the fetch']
  assert tfhub_checker.check_archive(io.BytesIO(b'not gzip'))[0].startswith(
      'not a readable .tar.gz')


def test_the_version_folder_uploaded_to_kaggle_loads_from_a_kaggle_models_url(saved_model,
                                                                               tmp_path):
  """tensorflow_hub 0.16.1 has no Kaggle code: a Kaggle URL is an http(s) handle, which
  compressed_module_resolver.HttpCompressedFileResolver fetches with `?tf-hub-format=compressed`
  appended and unpacks as a .tar.gz. Stood in for here by a loopback server that answers a
  Kaggle-shaped URL with the version folder, archived, only when asked with that query."""
  publication = publishing.publish(saved_model, str(tmp_path / 'hub'), CARD, METRICS)
  # `kaggle models instances versions create ... -p <folder>` uploads the version folder.
  upload = sorted(os.path.relpath(os.path.join(d, n), publication.path)
                  for d, _, names in os.walk(publication.path) for n in names)
  assert upload == MODULE_FILES
  path = '/models/ganpipe/generator/tensorFlow2/digits-dense/1'
  archive = open(publication.archive_path, 'rb').read()
  requests = []

  class Kaggle(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
      requests.append(self.path)
      found = self.path == f'{path}?tf-hub-format=compressed'
      self.send_response(200 if found else 404)
      self.end_headers()
      self.wfile.write(archive if found else b'')

    def log_message(self, *args):  # pylint: disable=arguments-differ
      pass

  with _http_server(Kaggle) as server:
    module = hub.load(f'{server}{path}')
  assert requests == [f'{path}?tf-hub-format=compressed']
  noise = tf.random.normal([2, LATENT], seed=8)
  np.testing.assert_allclose(module(noise).numpy(),
                             _images(tf.saved_model.load(saved_model), noise), atol=1e-6)
