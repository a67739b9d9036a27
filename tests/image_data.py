"""Small image datasets for tests, made from scikit-learn's digits."""

import os
from typing import Dict, Iterable, Optional

import numpy as np
from PIL import Image
from sklearn import datasets


def digit_images(count: int, offset: int = 0, classes: Optional[Iterable[int]] = None):
  """(uint8 8x8 array, label) pairs of the first `count` digits of the wanted classes."""
  digits = datasets.load_digits()
  wanted = set(classes) if classes is not None else set(range(10))
  pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  chosen = [(pixels[i], int(digits.target[i])) for i in range(offset, len(digits.target))
            if int(digits.target[i]) in wanted]
  return chosen[:count]


def write_class_folders(root: str, per_class: Dict[str, int], offset: int = 0,
                        size: int = 8, fmt: str = 'png') -> Dict[str, int]:
  """Writes `root/<class>/<n>.<fmt>`; class `digit_<d>` holds images of digit d.

  Returns:
    The number of images written per class.
  """
  written = {}
  for name, count in per_class.items():
    digit = int(name.rsplit('_', 1)[-1])
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    images = digit_images(count, offset=offset, classes=[digit])
    for index, (pixels, _) in enumerate(images):
      image = Image.fromarray(pixels, mode='L')
      if size != 8:
        image = image.resize((size, size))
      image.save(os.path.join(folder, f'{index:04d}.{fmt}'))
    written[name] = len(images)
  return written
