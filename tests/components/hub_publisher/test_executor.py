"""HubPublisher's executor on fake artifacts and a small real generator: what it publishes, that
TF Hub can load and fine-tune it, and that blessings and crashes leave no version behind."""

import json
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras
from tfx.types import channel_utils
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.models.gan import model as model_lib
from ganpipe.models.gan import training as gan_training
from ganpipe.components.hub_publisher import component
from ganpipe.components.hub_publisher import executor
from ganpipe.components.hub_publisher import module_files
from ganpipe.components.hub_publisher import publishing

SHAPE, LATENT = (8, 8, 1), 4
METRICS = {'num_samples': 300, 'frechet_classifier_distance': 12.345,
           'real_frechet_classifier_distance': 1.5, 'classifier_score': 7.25,
           'real_classifier_score': 9.5, 'blessed': True, 'reasons': []}


@pytest.fixture(scope='module')
def pipeline_outputs(tmp_path_factory):
  """A dense generator exported as Trainer[gan] writes it, and the evaluation's metrics.json."""
  root = tmp_path_factory.mktemp('hub_publisher')
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator(model_lib.DENSE, LATENT, SHAPE)
  generator(tf.random.normal([16, LATENT]), training=True)  # moves the batch-norm statistics
  gan_training.export_generator(generator, LATENT,
                                str(root / 'Trainer' / 'model' / '5' / 'Format-Serving'))
  generator(tf.random.normal([16, LATENT]), training=True)  # a generator trained some more
  gan_training.export_generator(generator, LATENT,
                                str(root / 'Trainer' / 'model' / '9' / 'Format-Serving'))
  os.makedirs(root / 'GeneratorEvaluator' / 'evaluation' / '6')
  with open(root / 'GeneratorEvaluator' / 'evaluation' / '6' / 'metrics.json', 'w') as f:
    json.dump(METRICS, f)
  return root


def _publish(outputs, hub_root, blessed=1, infra_blessed=None, model_id=5, report=None,
             **params):
  model = standard_artifacts.Model()
  model.uri = str(outputs / 'Trainer' / 'model' / str(model_id))
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(outputs / 'GeneratorEvaluator' / 'blessing' / '6')
  blessing.set_int_custom_property('blessed', blessed)
  blessing.set_string_custom_property('reason', '' if blessed else 'distance 80.00 is above 40.00')
  evaluation = artifacts.GeneratorEvaluation()
  evaluation.uri = str(outputs / 'GeneratorEvaluator' / 'evaluation' / '6')
  inputs = {'model': [model], 'blessing': [blessing], 'evaluation': [evaluation]}
  if infra_blessed is not None:
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(outputs / 'InfraValidator' / 'blessing' / '7')
    infra.set_int_custom_property('blessed', infra_blessed)
    infra.set_string_custom_property('reason', 'server never became AVAILABLE')
    inputs['infra_blessing'] = [infra]
  if report is not None:
    ingestion = artifacts.IngestionReport()
    ingestion.uri = str(hub_root) + '-report'
    os.makedirs(ingestion.uri)
    with open(os.path.join(ingestion.uri, 'ingestion_report.json'), 'w') as f:
      json.dump(report, f)
    inputs['ingestion_report'] = [ingestion]
  module = artifacts.HubModule()
  module.uri = str(outputs / 'HubPublisher' / 'published_module' / '8')
  exec_properties = {'hub_root': str(hub_root), 'publisher': 'ganpipe',
                     'module_name': 'generator', 'dataset': 'digits', 'architecture': 'dense',
                     'license': 'Apache-2.0', 'make_archive': 1}
  exec_properties.update(params)
  executor.Executor().Do(inputs, {'published_module': [module]}, exec_properties)
  return module


def _images(model, noise):
  return model.signatures['serving_default'](noise=noise)['images'].numpy()


def test_publishes_versions_one_then_two_with_docs_and_archive(pipeline_outputs, tmp_path):
  first = _publish(pipeline_outputs, tmp_path, infra_blessed=1,
                   asset_url='https://models.example.org/hub')
  second = _publish(pipeline_outputs, tmp_path, model_id=9)
  root = tmp_path / 'ganpipe' / 'generator'
  assert sorted(os.listdir(root)) == [
      '1', '1.md', '1.tar.gz', '2', '2.md', '2.tar.gz']  # no temporaries left
  assert sorted(os.listdir(tmp_path / 'ganpipe')) == ['ganpipe.md', 'generator']
  for module, version in ((first, 1), (second, 2)):
    assert module.get_int_custom_property('published') == 1
    assert module.get_int_custom_property('version') == version
    assert module.get_string_custom_property('published_path') == str(root / str(version))
    assert module.get_string_custom_property('archive_path') == str(root / f'{version}.tar.gz')
    assert module.get_string_custom_property('doc_path') == str(root / f'{version}.md')
  assert sorted(os.listdir(root / '2')) == ['assets', 'fingerprint.pb', 'saved_model.pb',
                                            'variables']

  doc = (root / '1.md').read_text()
  assert doc.splitlines()[0] == '# Module ganpipe/generator/1'
  assert ('<!-- asset-path: https://models.example.org/hub/ganpipe/generator/1.tar.gz -->'
          in doc)
  for comment in ('<!-- task: image-generator -->', '<!-- fine-tunable: true -->',
                  '<!-- format: saved_model_2 -->', '<!-- license: apache-2.0 -->',
                  '<!-- network-architecture: gan -->'):
    assert comment in doc
  # The shapes are read from the SavedModel, the metrics from the evaluation artifact.
  assert f'`[batch, {LATENT}]`' in doc and '`[batch, 8, 8, 1]`' in doc
  assert '| Fréchet classifier distance (lower is better) | 12.35 | 1.50 |' in doc
  assert '<!-- asset-path:' not in (root / '2.md').read_text()  # published without an asset URL
  assert str(tmp_path) not in doc + (root / '2.md').read_text()


def test_the_generator_already_published_is_not_published_again(pipeline_outputs, tmp_path):
  first = _publish(pipeline_outputs, tmp_path)
  again = _publish(pipeline_outputs, tmp_path)
  path = first.get_string_custom_property('published_path')
  assert again.get_int_custom_property('published') == 0
  assert again.get_int_custom_property('unchanged') == 1
  assert again.get_string_custom_property('reason') == (
      f'version 1 at {path} already holds this generator')
  assert sorted(os.listdir(tmp_path / 'ganpipe' / 'generator')) == ['1', '1.md', '1.tar.gz']
  assert _publish(pipeline_outputs, tmp_path, model_id=9).get_int_custom_property('version') == 2


def test_the_card_names_the_folder_and_how_much_data_it_held(pipeline_outputs, tmp_path):
  report = {'accepted': 1797, 'accepted_by_split': {'train': 1437, 'eval': 360},
            'rejected': 2, 'classes': [f'digit_{d}' for d in range(12)],
            'empty_classes': ['digit_x']}
  module = _publish(pipeline_outputs, tmp_path / 'hub', dataset='folder',
                    data_dir='/data/my-digits', report=report)
  readme = open(module.get_string_custom_property('doc_path')).read()
  assert readme.splitlines()[2] == (
      'A dense GAN generator trained on my-digits: noise of size 4 to 8x8x1 images.')
  assert 'Trained on folder' not in readme
  assert '<!-- dataset:' not in readme  # tfhub.dev's tags/dataset.yaml has no such id
  assert ('Trained on the image folder `my-digits` (`/data/my-digits`): 1,797 images in 12 '
          'classes (digit_0, digit_1, digit_2, digit_3, digit_4, digit_5, digit_6, digit_7, '
          'digit_8, digit_9 and 2 more), 1,437 for training and 360 for evaluation. 2 more '
          'records could not be used and were left out (see the ingestion report). Class '
          'folders without images, left out: digit_x.') in readme


@pytest.mark.parametrize('source, data_dir, name, description', [
    ('digits', '', 'digits', "Trained on scikit-learn's 8x8 handwritten digits."),
    ('fashion-mnist', '', 'fashion-mnist', 'Trained on Fashion-MNIST.'),
    ('npz', '/d/scans/', 'scans', 'Trained on the .npz files in `scans` (`/d/scans/`).'),
])
def test_each_source_is_named(source, data_dir, name, description):
  assert executor.describe_dataset(source, data_dir, None) == (name, description)


def test_without_archive_there_is_no_asset(pipeline_outputs, tmp_path):
  module = _publish(pipeline_outputs, tmp_path, make_archive=0)
  root = tmp_path / 'ganpipe' / 'generator'
  assert sorted(os.listdir(root)) == ['1', '1.md']
  assert '<!-- asset-path:' not in (root / '1.md').read_text()
  assert not module.has_custom_property('archive_path')


@pytest.mark.parametrize('blessed, infra_blessed, reason', [
    (0, None, 'generator not blessed: distance 80.00 is above 40.00'),
    (0, 1, 'generator not blessed: distance 80.00 is above 40.00'),
    (1, 0, 'generator not blessed by infra validation: server never became AVAILABLE'),
])
def test_not_blessed_is_not_published(pipeline_outputs, tmp_path, blessed, infra_blessed,
                                      reason):
  module = _publish(pipeline_outputs, tmp_path, blessed=blessed, infra_blessed=infra_blessed)
  assert module.get_int_custom_property('published') == 0
  assert module.get_string_custom_property('reason') == reason
  assert not module.has_custom_property('version')
  assert not os.path.exists(tmp_path / 'ganpipe')


def test_hub_load_gives_the_exported_images(pipeline_outputs, tmp_path):
  path = _publish(pipeline_outputs, tmp_path).get_string_custom_property('published_path')
  exported = tf.saved_model.load(
      str(pipeline_outputs / 'Trainer' / 'model' / '5' / 'Format-Serving'))
  module = hub.load(path)
  noise = tf.random.normal([6, LATENT], seed=1)
  np.testing.assert_allclose(module(noise).numpy(), _images(exported, noise), atol=1e-6)
  np.testing.assert_allclose(_images(module, noise), _images(exported, noise), atol=1e-6)
  assert module.trainable_variables
  assert len(module.variables) > len(module.trainable_variables)  # + batch-norm statistics


def test_keras_layer_fine_tunes(pipeline_outputs, tmp_path):
  path = _publish(pipeline_outputs, tmp_path).get_string_custom_property('published_path')
  keras.utils.set_random_seed(2)
  layer = hub.KerasLayer(path, trainable=True)
  noise = keras.Input([LATENT])
  model = keras.Model(noise, layer(noise))
  assert model.output_shape == (None, *SHAPE)
  assert layer.trainable_weights and layer.non_trainable_weights
  trainable = [w.numpy() for w in layer.trainable_weights]
  statistics = [w.numpy() for w in layer.non_trainable_weights]
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
  model.train_on_batch(np.random.default_rng(0).normal(size=(16, LATENT)).astype(np.float32),
                       np.zeros((16, *SHAPE), np.float32))
  for before, after in zip(trainable, layer.trainable_weights):
    assert not np.allclose(before, after.numpy())
  # Fine-tuning ran the training=True path, which updates the batch-norm statistics.
  for before, after in zip(statistics, layer.non_trainable_weights):
    assert not np.allclose(before, after.numpy())


def test_archive_extracts_to_the_module(pipeline_outputs, tmp_path):
  module = _publish(pipeline_outputs, tmp_path / 'hub')
  with tarfile.open(module.get_string_custom_property('archive_path')) as archive:
    names = archive.getnames()
    archive.extractall(tmp_path / 'extracted', filter='data')
  # At the archive's root, each folder ahead of its files, and nothing but the SavedModel.
  assert sorted(names) == ['assets', 'fingerprint.pb', 'saved_model.pb', 'variables',
                           'variables/variables.data-00000-of-00001', 'variables/variables.index']
  assert names.index('variables') < names.index('variables/variables.index')
  extracted = hub.load(str(tmp_path / 'extracted'))
  published = hub.load(module.get_string_custom_property('published_path'))
  noise = tf.random.normal([3, LATENT], seed=4)
  np.testing.assert_array_equal(extracted(noise).numpy(), published(noise).numpy())


def test_a_crash_while_copying_leaves_no_version(pipeline_outputs, tmp_path, monkeypatch):
  copy = module_files.copy_saved_model

  def copy_then_fail(source, destination):
    copy(source, destination)  # a partial module is on disk when it fails
    raise OSError('disk full')

  monkeypatch.setattr(module_files, 'copy_saved_model', copy_then_fail)
  with pytest.raises(OSError, match='disk full'):
    _publish(pipeline_outputs, tmp_path)
  assert os.listdir(tmp_path / 'ganpipe' / 'generator') == []
  monkeypatch.undo()
  module = _publish(pipeline_outputs, tmp_path)
  assert module.get_int_custom_property('version') == 1


def test_a_crash_at_the_final_rename_removes_the_placed_archive(pipeline_outputs, tmp_path,
                                                                monkeypatch):
  rename = os.rename

  def rename_archive_only(source, destination):
    if not destination.endswith(publishing.ARCHIVE_SUFFIX):
      raise OSError('killed')
    rename(source, destination)

  monkeypatch.setattr(os, 'rename', rename_archive_only)
  with pytest.raises(OSError, match='killed'):
    _publish(pipeline_outputs, tmp_path)  # the doc's rename, after the archive's, fails
  assert os.listdir(tmp_path / 'ganpipe' / 'generator') == []


def test_a_crash_at_the_folder_rename_removes_the_placed_archive_and_doc(pipeline_outputs,
                                                                         tmp_path, monkeypatch):
  rename = os.rename

  def rename_files_only(source, destination):
    if os.path.isdir(source):
      raise OSError('killed')
    rename(source, destination)

  monkeypatch.setattr(os, 'rename', rename_files_only)
  with pytest.raises(OSError, match='killed'):
    _publish(pipeline_outputs, tmp_path)
  assert os.listdir(tmp_path / 'ganpipe' / 'generator') == []


def test_component_wiring():
  def channel(artifact_type):
    return channel_utils.as_channel([artifact_type()])

  publisher = component.HubPublisher(
      model=channel(standard_artifacts.Model), blessing=channel(standard_artifacts.ModelBlessing),
      evaluation=channel(artifacts.GeneratorEvaluation),
      infra_blessing=channel(standard_artifacts.InfraBlessing), hub_root='/hub',
      dataset='digits', architecture='dense')
  assert publisher.exec_properties == {
      'hub_root': '/hub', 'publisher': 'ganpipe', 'module_name': 'generator',
      'dataset': 'digits', 'architecture': 'dense', 'license': 'Apache-2.0', 'make_archive': 1,
      'data_dir': '', 'asset_url': None}
  assert 'ingestion_report' not in publisher.inputs
  with_data = component.HubPublisher(
      model=channel(standard_artifacts.Model), blessing=channel(standard_artifacts.ModelBlessing),
      evaluation=channel(artifacts.GeneratorEvaluation), hub_root='/hub', dataset='folder',
      data_dir='/data/flowers', architecture='dcgan',
      ingestion_report=channel(artifacts.IngestionReport))
  assert with_data.exec_properties['data_dir'] == '/data/flowers'
  assert with_data.inputs['ingestion_report'].type_name == 'ganpipe.IngestionReport'
  assert publisher.outputs['published_module'].type_name == 'ganpipe.HubModule'
  with pytest.raises(ValueError, match='module_name must be letters, digits'):
    component.HubPublisher(
        model=channel(standard_artifacts.Model),
        blessing=channel(standard_artifacts.ModelBlessing),
        evaluation=channel(artifacts.GeneratorEvaluation), hub_root='/hub',
        dataset='digits', architecture='dense', module_name='../escape')
  with pytest.raises(ValueError, match='asset_url names where the archive is served'):
    component.HubPublisher(
        model=channel(standard_artifacts.Model),
        blessing=channel(standard_artifacts.ModelBlessing),
        evaluation=channel(artifacts.GeneratorEvaluation), hub_root='/hub',
        dataset='digits', architecture='dense', make_archive=False,
        asset_url='https://models.example.org/hub')


def test_publishes_to_an_object_store(pipeline_outputs, tmp_path):
  # TF's in-memory file system stands in for gs:// or s3:// (Kubeflow): no atomic folder renames.
  root = f'ram://hub-{tmp_path.name}'
  module = _publish(pipeline_outputs, root, asset_url='https://storage.example.org/hub')
  assert module.get_int_custom_property('published') == 1
  final = f'{root}/ganpipe/generator/1'
  assert module.get_string_custom_property('published_path') == final
  for name in ('saved_model.pb', 'variables/variables.index'):
    assert tf.io.gfile.exists(f'{final}/{name}'), name
  assert not tf.io.gfile.exists(f'{final}/README.md')
  assert tf.io.gfile.exists(f'{final}.tar.gz')
  doc = tf.io.gfile.GFile(f'{final}.md').read()
  assert doc.startswith('# Module ganpipe/generator/1')
  assert '<!-- asset-path: https://storage.example.org/hub/ganpipe/generator/1.tar.gz -->' in doc
  assert tf.io.gfile.GFile(f'{root}/ganpipe/ganpipe.md').read().startswith('# Publisher ganpipe')
  assert _publish(pipeline_outputs, root, model_id=9).get_string_custom_property(
      'published_path').endswith('/generator/2')
