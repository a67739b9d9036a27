"""GAN metrics in a trained classifier's feature space, and the blessing rule."""

import dataclasses
from typing import List, Optional

import numpy as np
from scipy import linalg


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

  ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).
  """
  mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
  sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(
      np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'mismatched shapes: {mu1.shape} vs {mu2.shape}, '
                     f'{sigma1.shape} vs {sigma2.shape}')
  covmean, _ = linalg.sqrtm(sigma1 @ sigma2, disp=False)
  if not np.all(np.isfinite(covmean)):
    # A singular product (few samples, dead features): nudge both covariances off singularity.
    offset = np.eye(sigma1.shape[0]) * 1e-6
    covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  covmean = np.real(covmean)  # numerical error leaves tiny imaginary parts
  diff = mu1 - mu2
  distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
  return float(max(distance, 0.0))


def frechet_classifier_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """The Fréchet distance between Gaussians fitted to two [n, d] sets of features."""
  features_a = np.asarray(features_a, np.float64)
  features_b = np.asarray(features_b, np.float64)
  if features_a.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
    raise ValueError(f'expected two [n, d] feature sets, got {features_a.shape} and '
                     f'{features_b.shape}')
  return frechet_distance(features_a.mean(axis=0), np.cov(features_a, rowvar=False),
                          features_b.mean(axis=0), np.cov(features_b, rowvar=False))


def classifier_score(probabilities: np.ndarray, eps: float = 1e-12) -> float:
  """exp(E_x[KL(p(y|x) || p(y))]): 1 for uninformative predictions, at most the class count."""
  p = np.asarray(probabilities, np.float64)
  if p.ndim != 2:
    raise ValueError(f'expected [n, classes] probabilities, got shape {p.shape}')
  marginal = p.mean(axis=0, keepdims=True)
  kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
  return float(np.exp(kl.mean()))


def distance_meaningful(num_samples: int, feature_dimensions: int) -> bool:
  """Whether a Fréchet distance over `num_samples` images per set means anything.

  The covariance of n feature vectors has rank n - 1 at most. With no more images than feature
  dimensions it is singular, and the distance measures which few images were drawn rather than
  how the two sets differ (40 images in a 128-d feature space give a covariance of rank 39).
  """
  return num_samples > feature_dimensions


@dataclasses.dataclass
class Judgement:
  blessed: bool
  reasons: List[str]


def judge(distance: float, score: float, real_distance: float, real_score: float,
          baseline_distance: Optional[float], max_distance_ratio: float, min_score_ratio: float,
          max_distance_increase: float, distance_is_meaningful: bool = True) -> Judgement:
  """Blesses a generator close enough to real data, diverse enough, and no worse than before.

  The distance is judged against the real images' own (train vs eval): the scale of the
  classifier's features differs from one dataset and classifier to the next, and so does the
  distance between two samples of the same real data. When the sample is too small for the
  distance to mean anything (`distance_meaningful`), the generator is judged by the classifier
  score alone, which needs no covariance.
  """
  reasons = []
  relative = distance / real_distance if real_distance > 0 else np.inf
  if distance_is_meaningful and (not np.isfinite(distance) or relative > max_distance_ratio):
    reasons.append(f'Fréchet classifier distance {distance:.2f} is {relative:.1f} times the real '
                   f'images\' {real_distance:.2f}, above {max_distance_ratio:.1f} times')
  ratio = score / real_score if real_score > 0 else 0.0
  if ratio < min_score_ratio:
    reasons.append(f'classifier score {score:.2f} is {ratio:.1%} of the real images\' '
                   f'{real_score:.2f}, below {min_score_ratio:.1%}')
  if (distance_is_meaningful and baseline_distance is not None and
      distance > baseline_distance * (1 + max_distance_increase)):
    reasons.append(f'distance {distance:.2f} is more than {max_distance_increase:.0%} above the '
                   f'latest blessed generator\'s {baseline_distance:.2f}')
  return Judgement(not reasons, reasons)
