"""benchmarks/gan_quality.py: the breakdown of the classifier score it reports."""

import math

import numpy as np
import pytest

from benchmarks import gan_quality
from ganpipe.components.generator_evaluator import metrics


def test_the_breakdown_adds_up_to_the_score_the_evaluator_computes():
  probabilities = np.random.default_rng(0).dirichlet(np.full(10, 0.3), size=500)
  parts = gan_quality.breakdown(probabilities)
  assert parts['class_entropy'] - parts['prediction_entropy'] == pytest.approx(
      math.log(metrics.classifier_score(probabilities)), abs=1e-3)


def test_the_breakdown_tells_a_collapsed_generator_from_an_unsure_judge():
  sure_of_one_class = np.tile(np.eye(10)[3] * 0.99 + 0.001, (100, 1))
  parts = gan_quality.breakdown(sure_of_one_class)
  assert parts['class_entropy'] < 0.1 and parts['prediction_entropy'] < 0.1
  assert (parts['rarest_class_share'], parts['commonest_class_share']) == (0.0, 1.0)
  unsure_of_all = np.full((100, 10), 0.1)
  parts = gan_quality.breakdown(unsure_of_all)
  assert parts['class_entropy'] == parts['prediction_entropy'] == pytest.approx(math.log(10),
                                                                                abs=1e-4)


def test_the_report_names_the_settings_the_trainer_resolves_by_architecture():
  from ganpipe.models import hparams  # pylint: disable=import-outside-toplevel
  settings = gan_quality.resolved(hparams.GanConfig(), (28, 28, 1))
  assert settings == {
      'architecture': hparams.DCGAN, 'epochs': hparams.EPOCHS[hparams.DCGAN],
      'generator_learning_rate': hparams.GENERATOR_LEARNING_RATES[hparams.DCGAN],
      'discriminator_learning_rate': hparams.DISCRIMINATOR_LEARNING_RATES[hparams.DCGAN],
      'minibatch_stddev': hparams.MINIBATCH_STDDEV[hparams.DCGAN]}
  assert gan_quality.resolved(hparams.GanConfig(discriminator_learning_rate=1e-3),
                              (8, 8, 1))['discriminator_learning_rate'] == 1e-3
