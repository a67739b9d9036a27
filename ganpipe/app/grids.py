"""Generated images as one PNG grid, scaled up so that small images can be seen."""

import argparse
import math

import numpy as np

from ganpipe.models.gan import grid as grid_lib

# By default each image is scaled up until its shorter side has at least this many pixels: an
# 8x8 digit becomes 64x64, a 28x28 one 84x84, and 64x64 images stay as they are.
READABLE_SIDE = 64
AUTO = 0


def add_scale_flag(parser: argparse.ArgumentParser, flag: str = '--scale') -> None:
  parser.add_argument(flag, type=_scale, default=AUTO, metavar='N',
                      help='scale each image up N times (nearest-neighbour, so pixels stay '
                           f'sharp); 0 scales it to at least {READABLE_SIDE} pixels a side '
                           '(default: 0)')


def _scale(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
  if not 0 <= value <= 64:
    raise argparse.ArgumentTypeError(f'must be from 0 (automatic) to 64, got {text}')
  return value


def scale_for(height: int, width: int, scale: int = AUTO) -> int:
  """The factor `scale` stands for: itself, or for AUTO the one that makes images readable."""
  if scale != AUTO:
    return scale
  return max(1, math.ceil(READABLE_SIDE / max(1, min(height, width))))


def make_grid(images: np.ndarray, columns: int = 0, scale: int = AUTO) -> np.ndarray:
  """[n, h, w, c] images in [0, 1] -> one uint8 [H, W, c] grid, each image scaled up.

  Nearest-neighbour: every pixel becomes a `scale` x `scale` block, so a generated digit looks
  as the model made it, not blurred by interpolation.
  """
  images = np.asarray(images)
  factor = scale_for(images.shape[1], images.shape[2], scale)
  if factor > 1:
    images = np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)
  return grid_lib.make_grid(images, columns=columns)
