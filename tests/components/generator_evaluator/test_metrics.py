"""Fréchet classifier distance, classifier score and the blessing rule."""

import numpy as np
import pytest

from ganpipe.components.generator_evaluator import metrics


def test_distance_of_a_set_to_itself_is_about_zero():
  features = np.random.default_rng(0).normal(size=(500, 16))
  assert metrics.frechet_classifier_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_gaussians_match_the_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
  got = metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  assert got == pytest.approx(expected, rel=1e-9)


def test_sampled_gaussians_approach_the_closed_form():
  rng = np.random.default_rng(1)
  mu1, mu2 = np.zeros(4), np.full(4, 0.5)
  a = rng.normal(size=(4, 4))
  sigma1 = a @ a.T + np.eye(4)
  sigma2 = 2.0 * np.eye(4)
  exact = metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
  sampled = metrics.frechet_classifier_distance(rng.multivariate_normal(mu1, sigma1, 200_000),
                                                rng.multivariate_normal(mu2, sigma2, 200_000))
  assert sampled == pytest.approx(exact, rel=0.02)


def test_uniform_predictions_score_one():
  assert metrics.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)


def test_confident_balanced_predictions_score_the_class_count():
  probabilities = np.eye(10)[np.arange(1000) % 10]
  assert metrics.classifier_score(probabilities) == pytest.approx(10.0, rel=1e-6)


def test_confident_but_collapsed_predictions_score_one():
  probabilities = np.tile(np.eye(10)[3], (500, 1))
  assert metrics.classifier_score(probabilities) == pytest.approx(1.0)


def test_shape_errors():
  with pytest.raises(ValueError, match=r'expected \[n, classes\]'):
    metrics.classifier_score(np.ones(10))
  with pytest.raises(ValueError, match='expected two'):
    metrics.frechet_classifier_distance(np.ones((5, 3)), np.ones((5, 4)))


@pytest.mark.parametrize('distance, score, baseline, blessed, reason', [
    (10.0, 8.0, None, True, None),
    (50.0, 8.0, None, False, "distance 50.00 is 25.0 times the real images' 2.00, above 20.0"),
    (float('nan'), 8.0, None, False, 'distance nan'),
    (10.0, 2.0, None, False, "20.0% of the real images' 10.00, below 50.0%"),
    (10.0, 8.0, 9.0, True, None),
    (12.0, 8.0, 9.0, False, "more than 25% above the latest blessed generator's 9.00"),
])
def test_judge(distance, score, baseline, blessed, reason):
  verdict = metrics.judge(distance, score, 2.0, 10.0, baseline, max_distance_ratio=20.0,
                          min_score_ratio=0.5, max_distance_increase=0.25)
  assert verdict.blessed is blessed
  if reason:
    assert any(reason in r for r in verdict.reasons), verdict.reasons
  else:
    assert verdict.reasons == []


@pytest.mark.parametrize('samples, dimensions, meaningful', [
    (40, 128, False), (128, 128, False), (129, 128, True), (300, 64, True)])
def test_a_distance_needs_more_images_than_feature_dimensions(samples, dimensions, meaningful):
  assert metrics.distance_meaningful(samples, dimensions) is meaningful


def test_without_a_meaningful_distance_the_score_alone_decides():
  args = dict(real_distance=2.0, real_score=10.0, baseline_distance=1.0, max_distance_ratio=20.0,
              min_score_ratio=0.5, max_distance_increase=0.25)
  assert metrics.judge(500.0, 8.0, distance_is_meaningful=False, **args).blessed
  verdict = metrics.judge(500.0, 2.0, distance_is_meaningful=False, **args)
  assert not verdict.blessed and len(verdict.reasons) == 1
  assert verdict.reasons[0].startswith('classifier score 2.00')
  assert len(metrics.judge(500.0, 8.0, **args).reasons) == 2  # distance, and the baseline's
