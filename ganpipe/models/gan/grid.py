"""Image grids: many small images tiled into one, for sample PNGs and TensorBoard."""

import math

import numpy as np


def make_grid(images: np.ndarray, columns: int = 0, padding: int = 1) -> np.ndarray:
  """Tiles [n, h, w, c] images with values in [0, 1] into one uint8 [H, W, c] image.

  Args:
    images: the images, floats in [0, 1].
    columns: images per row; 0 makes the grid as square as possible.
    padding: pixels of black between images.
  """
  images = np.asarray(images, dtype=np.float32)
  if images.ndim != 4:
    raise ValueError(f'expected [n, h, w, c] images, got shape {images.shape}')
  count, height, width, channels = images.shape
  columns = columns or math.ceil(math.sqrt(count))
  rows = math.ceil(count / columns)
  grid = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding,
                   channels), dtype=np.uint8)
  pixels = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
  for index in range(count):
    row, column = divmod(index, columns)
    top, left = padding + row * (height + padding), padding + column * (width + padding)
    grid[top:top + height, left:left + width] = pixels[index]
  return grid
