"""`ganpipe publish`: a published module promoted to another hub root, from ML Metadata."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from ganpipe.models.gan import model as model_lib
from ganpipe.models.gan import training as gan_training
from ganpipe.app import cli
from ganpipe.pipeline import lineage
from ganpipe.pipeline import publish
from tests.pipeline import mlmd_writer

METRICS = {'num_samples': 300, 'frechet_classifier_distance': 12.345,
           'real_frechet_classifier_distance': 1.5, 'classifier_score': 7.25,
           'real_classifier_score': 9.5, 'blessed': True, 'reasons': []}


@pytest.fixture(scope='module')
def published(tmp_path_factory):
  """What a run leaves: a generator model, its evaluation, and HubPublisher's record of both."""
  root = tmp_path_factory.mktemp('run')
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator(model_lib.DENSE, 4, (8, 8, 1))
  generator(tf.random.normal([16, 4]), training=True)
  model_uri = str(root / 'gan_trainer' / 'model' / '7')
  gan_training.export_generator(generator, 4, os.path.join(model_uri, 'Format-Serving'))
  evaluation_uri = root / 'generator_evaluator' / 'evaluation' / '9'
  os.makedirs(evaluation_uri)
  (evaluation_uri / 'metrics.json').write_text(json.dumps(METRICS))
  metadata = str(root / 'metadata.sqlite')
  store = mlmd_writer.MlmdWriter(metadata)
  model = store.artifact('Model', model_uri)
  store.execution('gan_trainer', 'run-1', {}, {'model': model})
  evaluation = store.artifact('ganpipe.GeneratorEvaluation', str(evaluation_uri))
  blessing = store.artifact('ModelBlessing', str(root / 'generator_evaluator' / 'blessing' / '9'),
                            blessed=1)
  store.execution('generator_evaluator', 'run-1', {'model': model},
                  {'evaluation': evaluation, 'blessing': blessing})
  report_uri = root / 'image_example_gen' / 'ingestion_report' / '3'
  os.makedirs(report_uri)
  (report_uri / 'ingestion_report.json').write_text(json.dumps(
      {'accepted': 60, 'accepted_by_split': {'train': 48, 'eval': 12}, 'rejected': 0,
       'classes': ['cat', 'dog']}))
  report = store.artifact('ganpipe.IngestionReport', str(report_uri))
  store.execution('image_example_gen', 'run-1', {}, {'ingestion_report': report})
  module_path = str(root / 'hub' / 'ganpipe' / 'generator' / '1')
  module = store.artifact('ganpipe.HubModule', str(root / 'hub_publisher' / 'module' / '10'),
                          published=1, published_path=module_path, version=1)
  store.execution('hub_publisher', 'run-1',
                  {'model': model, 'blessing': blessing, 'evaluation': evaluation,
                   'ingestion_report': report},
                  {'published_module': module}, publisher='ganpipe', module_name='generator',
                  dataset='folder', data_dir='/data/pets', architecture='dense',
                  license='Apache-2.0', make_archive=0)
  pushed = store.artifact('PushedModel', str(root / 'pusher' / 'pushed_model' / '11'), pushed=1,
                          pushed_destination=str(root / 'serving' / 'generator' / '5'))
  store.execution('generator_pusher', 'run-1', {'model_blessing': blessing},
                  {'pushed_model': pushed})
  return metadata, module_path, model_uri


def test_the_same_generator_metrics_and_card_are_published_under_the_new_root(published,
                                                                               tmp_path):
  metadata, module_path, model_uri = published
  publication = publish.republish(metadata, 'ganpipe', module_path, str(tmp_path / 'shared'))
  assert publication.path == str(tmp_path / 'shared' / 'ganpipe' / 'generator' / '1')
  assert publication.archive_path is None  # make_archive=0, as the pipeline did
  assert publication.doc_path == publication.path + '.md'
  doc = open(publication.doc_path, encoding='utf-8').read()
  assert doc.startswith('# Module ganpipe/generator/1')
  assert '<!-- network-architecture: gan -->' in doc and '12.3' in doc  # card and metrics
  assert '<!-- asset-path:' not in doc
  assert ('Trained on the image folder `pets` (`/data/pets`): 60 images in 2 classes (cat, dog), '
          '48 for training and 12 for evaluation.') in doc
  noise = tf.random.stateless_normal([3, 4], seed=[1, 2])
  exported = tf.saved_model.load(os.path.join(model_uri, 'Format-Serving'))
  np.testing.assert_allclose(hub.load(publication.path)(noise, training=False).numpy(),
                             exported.signatures['serving_default'](noise=noise)['images'].numpy(),
                             atol=1e-6)
  again = publish.republish(metadata, 'ganpipe', module_path, str(tmp_path / 'shared'),
                            make_archive=True)
  assert again.version == 2 and os.path.exists(again.archive_path)


def test_an_asset_url_names_the_new_roots_archive_and_brings_the_archive(published, tmp_path):
  metadata, module_path, _ = published
  # The pipeline published without an archive (make_archive=0); the asset needs one.
  publication = publish.republish(metadata, 'ganpipe', module_path, str(tmp_path / 'shared'),
                                  asset_url='https://models.example.org/shared')
  assert os.path.exists(publication.archive_path)
  doc = open(publication.doc_path, encoding='utf-8').read()
  assert ('<!-- asset-path: https://models.example.org/shared/ganpipe/generator/1.tar.gz -->'
          in doc)


def test_what_is_not_a_published_module_is_refused(published, tmp_path):
  metadata, _, model_uri = published
  root = os.path.dirname(os.path.dirname(os.path.dirname(model_uri)))
  with pytest.raises(publish.PublishError, match=r'not a TF Hub module .*\(it is a PushedModel'):
    publish.republish(metadata, 'ganpipe', os.path.join(root, 'serving', 'generator', '5'),
                      str(tmp_path / 'shared'))
  with pytest.raises(publish.PublishError, match=r'\(it is a Model\)'):
    publish.republish(metadata, 'ganpipe', model_uri, str(tmp_path / 'shared'))
  with pytest.raises(lineage.LineageError, match='no artifact'):
    publish.republish(metadata, 'ganpipe', '/elsewhere', str(tmp_path / 'shared'))
  assert not os.path.exists(tmp_path / 'shared')


def test_cli(published, tmp_path, capsys):
  metadata, module_path, _ = published
  assert cli.main(['publish', module_path, '--to', str(tmp_path / 'shared'), '--archive',
                   '--paths.metadata_path', metadata]) == 0
  out = capsys.readouterr().out
  module = tmp_path / 'shared' / 'ganpipe' / 'generator' / '1'
  assert out.strip() == f'Published version 1 to {module} and {module}.tar.gz'
  assert cli.main(['publish', '/elsewhere', '--to', str(tmp_path / 'shared'),
                   '--paths.metadata_path', metadata]) == cli.EXIT_FAILED
  assert 'no artifact in the metadata store is at /elsewhere' in capsys.readouterr().err
  assert cli.main(['publish', module_path, '--to', str(tmp_path / 'other'), '--no-archive',
                   '--publish.hub_asset_url', 'https://models.example.org/other',
                   '--paths.metadata_path', metadata]) == cli.EXIT_USAGE
  assert 'Fix: drop --no-archive' in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'other')
  assert cli.main(['publish', module_path, '--to', str(tmp_path / 'other'),
                   '--publish.hub_asset_url', 'https://models.example.org/other',
                   '--paths.metadata_path', metadata]) == 0
  assert ('<!-- asset-path: https://models.example.org/other/ganpipe/generator/1.tar.gz -->' in
          (tmp_path / 'other' / 'ganpipe' / 'generator' / '1.md').read_text())
