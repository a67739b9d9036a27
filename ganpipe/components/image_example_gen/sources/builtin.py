"""Built-in datasets: scikit-learn's digits and Debian's Fashion-MNIST."""

import functools
from typing import List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from ganpipe.components.image_example_gen import records
from ganpipe.components.image_example_gen.sources import base
from ganpipe.components.image_example_gen.sources import idx

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
FASHION_MNIST_INSTALL = ('install it with `sudo apt-get install dataset-fashion-mnist`, or pass '
                         '--data.data_dir with a folder holding its four IDX files')


class DigitsSource(base.ImageSource):
  """scikit-learn's 8x8 handwritten digits: 1,797 images shipped inside the package."""

  @property
  def class_names(self) -> List[str]:
    return [str(digit) for digit in range(10)]

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    del split  # the digits have no splits of their own
    names = self.class_names

    @beam.ptransform_fn
    def _read(pipeline):
      return (pipeline
              | 'DigitIndices' >> beam.Create(range(_num_digits()))
              | 'Digit' >> beam.Map(_digit, names))

    return _read()  # pylint: disable=no-value-for-parameter


@functools.lru_cache(maxsize=1)
def _load_digits() -> Tuple[np.ndarray, np.ndarray]:
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  digits = datasets.load_digits()
  # The digits are 0..16 intensities; spread them over 8 bits.
  pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  return pixels, digits.target.astype(np.int64)


def _num_digits() -> int:
  return len(_load_digits()[1])


def _digit(index: int, names: List[str]) -> records.RawImage:
  pixels, labels = _load_digits()
  label = int(labels[index])
  return records.RawImage(f'digits:{index}', label, names[label], pixels[index])


class FashionMnistSource(idx.IdxSource):
  """Fashion-MNIST's IDX files (70,000 28x28 images), from Debian's dataset-fashion-mnist."""

  def __init__(self, root: Optional[str] = None):
    root = root or FASHION_MNIST_DIR
    if not tf.io.gfile.isdir(root):
      raise FileNotFoundError(f'Fashion-MNIST is not at {root}: {FASHION_MNIST_INSTALL}')
    super().__init__(root, class_names=FASHION_MNIST_CLASSES)

