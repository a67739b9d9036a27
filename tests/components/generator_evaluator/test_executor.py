"""GeneratorEvaluator's executor on fake artifacts: it blesses a trained generator and rejects a
random one with the default thresholds, and compares against a baseline."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.generator_evaluator import evaluation
from ganpipe.components.generator_evaluator import executor
from ganpipe.components.generator_evaluator import metrics
from ganpipe.components.image_example_gen import images
from ganpipe.models import signatures
from ganpipe.models.classifier import model as classifier_model
from ganpipe.models.classifier import training as classifier_training
from ganpipe.models.gan import training as gan_training
from ganpipe.models.training import strategy as strategy_lib
from ganpipe.pipeline import config as config_lib
from tests import image_data

SHAPE = (8, 8, 1)


def _model_artifact(path, artifact_id):
  model = standard_artifacts.Model()
  model.uri = path
  model.id = artifact_id
  return model


@pytest.fixture(scope='module')
def fixtures(tmp_path_factory):
  """Digits examples, a trained classifier, and a trained and an untrained generator."""
  root = tmp_path_factory.mktemp('generator_evaluator')
  pixels, labels = image_data.digits_arrays(1797)
  for split, rows in (('train', slice(0, 1400)), ('eval', slice(1400, None))):
    examples = [images.make_example(p[..., np.newaxis], int(l), str(l), f'{split}:{i}')
                for i, (p, l) in enumerate(zip(pixels[rows], labels[rows]))]
    os.makedirs(root / 'examples' / f'Split-{split}')
    image_data.write_tfrecord(str(root / 'examples' / f'Split-{split}' / 'data.gz'), examples)
    # The same examples as a folder source writes them: class by class, over two files.
    by_class = sorted(examples, key=lambda e: e.features.feature['label'].int64_list.value[0])
    os.makedirs(root / 'by_class' / f'Split-{split}')
    for shard in range(2):
      image_data.write_tfrecord(str(root / 'by_class' / f'Split-{split}' / f'data-{shard}.gz'),
                                by_class[shard::2])
  train_pixels = pixels[:1400, ..., np.newaxis].astype(np.float32) / 255.0

  keras.utils.set_random_seed(0)
  classifier = classifier_model.build_classifier(SHAPE, 10, (64,), 'relu')
  classifier_model.compile_classifier(classifier, 'adam', 1e-2)
  classifier.fit(train_pixels, labels[:1400], epochs=15, batch_size=64, verbose=0)
  module = tf.Module()
  module.classifier = classifier  # tracks the variables the signature reads
  module.features = classifier_training.features_signature(classifier)
  tf.saved_model.save(module, str(root / 'classifier' / 'Format-Serving'), signatures={
      signatures.IMAGE_FEATURES: module.features})

  setup = strategy_lib.choose_training_setup()
  dataset = tf.data.Dataset.from_tensor_slices(train_pixels * 2 - 1).shuffle(1400, seed=0)
  config = config_lib.GanConfig()  # the default budget: 40 x 200 steps at 8x8 (the dense GAN)
  trained = gan_training.train(config, SHAPE, dataset.repeat().batch(config.batch_size), setup,
                               str(root / 'run'), verbose=0)
  gan_training.export_generator(trained.generator, config.latent_dim,
                                str(root / 'trained' / 'Format-Serving'))
  untrained = gan_training.build_gan(config, SHAPE, setup)
  gan_training.export_generator(untrained.generator, config.latent_dim,
                                str(root / 'random' / 'Format-Serving'))
  return root


def _evaluate(root, out, generator, baseline=None, examples_dir='examples', **params):
  examples = standard_artifacts.Examples()
  examples.uri = str(root / examples_dir)
  examples.split_names = '["train", "eval"]'
  evaluation = artifacts.GeneratorEvaluation()
  evaluation.uri = str(out / 'evaluation')
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(out / 'blessing')
  defaults = config_lib.GeneratorEvaluationConfig()
  exec_properties = {
      executor.NUM_SAMPLES_KEY: 300, executor.MAX_DISTANCE_RATIO_KEY: defaults.max_distance_ratio,
      executor.MIN_SCORE_RATIO_KEY: defaults.min_score_ratio,
      executor.MAX_DISTANCE_INCREASE_KEY: defaults.max_distance_increase,
      executor.SEED_KEY: 3}
  exec_properties.update(params)
  inputs = {'model': [_model_artifact(str(root / generator), 11)],
            'classifier': [_model_artifact(str(root / 'classifier'), 5)],
            'examples': [examples]}
  if baseline:
    inputs['baseline_model'] = [_model_artifact(str(root / baseline), 7)]
  executor.Executor().Do(inputs, {'evaluation': [evaluation], 'blessing': [blessing]},
                         exec_properties)
  with open(os.path.join(evaluation.uri, executor.METRICS_FILE)) as f:
    return json.load(f), blessing


def test_trained_generator_is_blessed(fixtures, tmp_path):
  figures, blessing = _evaluate(fixtures, tmp_path, 'trained')
  assert figures['blessed'], figures['reasons']
  assert blessing.get_int_custom_property('blessed') == 1
  assert blessing.get_int_custom_property('current_model_id') == 11
  assert os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  assert figures['num_samples'] == 300
  for key in ('frechet_classifier_distance', 'real_frechet_classifier_distance',
              'classifier_score', 'real_classifier_score'):
    assert np.isfinite(figures[key]) and figures[key] >= 0, key
  assert os.path.getsize(tmp_path / 'evaluation' / executor.SAMPLES_FILE) > 0


def test_random_generator_is_rejected_with_reasons(fixtures, tmp_path):
  figures, blessing = _evaluate(fixtures, tmp_path, 'random')
  assert not figures['blessed']
  assert blessing.get_int_custom_property('blessed') == 0
  assert os.path.exists(os.path.join(blessing.uri, 'NOT_BLESSED'))
  reason = blessing.get_string_custom_property('reason')
  assert 'Fréchet classifier distance' in reason and 'classifier score' in reason


def test_worse_than_the_baseline_is_rejected(fixtures, tmp_path):
  figures, blessing = _evaluate(fixtures, tmp_path, 'random', baseline='trained',
                                max_distance_ratio=1e9, min_score_ratio=0.0)
  assert figures['baseline_frechet_classifier_distance'] < figures['frechet_classifier_distance']
  assert not figures['blessed']
  assert "latest blessed generator's" in blessing.get_string_custom_property('reason')
  assert blessing.get_int_custom_property('baseline_model_id') == 7


def test_records_written_class_by_class_give_the_same_figures(fixtures, tmp_path):
  interleaved, _ = _evaluate(fixtures, tmp_path / 'interleaved', 'trained')
  by_class, _ = _evaluate(fixtures, tmp_path / 'by_class', 'trained', examples_dir='by_class')
  for key in ('real_frechet_classifier_distance', 'real_classifier_score',
              'frechet_classifier_distance', 'classifier_score'):
    assert by_class[key] == pytest.approx(interleaved[key], rel=1e-5), key
  # A reference of 10 classes: well-classified real digits score close to the class count.
  assert by_class['real_classifier_score'] > 8.5


def test_the_real_score_is_that_of_images_the_classifier_did_not_train_on(fixtures):
  train, held_out = evaluation.real_samples(str(fixtures / 'examples'), 300, seed=3)
  figures = evaluation.evaluate(str(fixtures / 'trained' / 'Format-Serving'),
                                str(fixtures / 'classifier' / 'Format-Serving'), train, held_out,
                                seed=3)
  embed = evaluation.ClassifierEmbedding(str(fixtures / 'classifier' / 'Format-Serving'))
  on_eval = metrics.classifier_score(embed(held_out)['probabilities'])
  on_train = metrics.classifier_score(embed(train)['probabilities'])
  assert figures['real_classifier_score'] == pytest.approx(on_eval)
  assert on_train > on_eval  # the classifier is surer of the images it learnt


def test_too_few_images_for_the_distance_are_judged_by_the_score_and_say_so(fixtures, tmp_path):
  # 40 images against the classifier's 64 features: the covariances are singular. A distance
  # threshold no generator could meet is then not applied; the score threshold still is.
  impossible = dict(max_distance_ratio=1e-6, min_score_ratio=0.3)
  small, blessing = _evaluate(fixtures, tmp_path / 'small', 'trained', num_samples=40,
                              **impossible)
  assert small['num_samples'] == 40 and small['feature_dimensions'] == 64
  assert small['distance_meaningful'] is False
  assert small['blessed'], small['reasons']
  enough, _ = _evaluate(fixtures, tmp_path / 'enough', 'trained', num_samples=300, **impossible)
  assert enough['distance_meaningful'] is True
  assert not enough['blessed'] and 'Fréchet classifier distance' in enough['reasons'][0]
  rejected, _ = _evaluate(fixtures, tmp_path / 'random', 'random', num_samples=40,
                          **{**impossible, 'min_score_ratio': 0.9})
  assert not rejected['blessed'] and rejected['reasons'][0].startswith('classifier score')
