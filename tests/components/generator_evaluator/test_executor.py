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
from ganpipe.components.generator_evaluator import executor
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
    os.makedirs(root / 'examples' / f'Split-{split}')
    image_data.write_tfrecord(
        str(root / 'examples' / f'Split-{split}' / 'data.gz'),
        [images.make_example(p[..., np.newaxis], int(l), str(l), f'digits:{i}')
         for i, (p, l) in enumerate(zip(pixels[rows], labels[rows]))])
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
  config = config_lib.GanConfig()  # the default budget: 15 x 200 steps
  trained = gan_training.train(config, SHAPE, dataset.repeat().batch(config.batch_size), setup,
                               str(root / 'run'), verbose=0)
  gan_training.export_generator(trained.generator, config.latent_dim,
                                str(root / 'trained' / 'Format-Serving'))
  untrained = gan_training.build_gan(config, SHAPE, setup)
  gan_training.export_generator(untrained.generator, config.latent_dim,
                                str(root / 'random' / 'Format-Serving'))
  return root


def _evaluate(root, out, generator, baseline=None, **params):
  examples = standard_artifacts.Examples()
  examples.uri = str(root / 'examples')
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
