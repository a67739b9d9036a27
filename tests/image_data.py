"""Small image datasets for tests, made from scikit-learn's digits."""

import gzip
import os
import struct
import zlib
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


def write_idx(path: str, array: np.ndarray, gz: bool = False) -> str:
  """Writes an unsigned-byte IDX file (the MNIST format); returns its path."""
  array = np.asarray(array, dtype=np.uint8)
  header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
      f'>{array.ndim}I', *array.shape)
  path = path + '.gz' if gz else path
  opener = gzip.open if gz else open
  with opener(path, 'wb') as f:
    f.write(header + array.tobytes())
  return path


def digits_arrays(count: int, offset: int = 0):
  """(images uint8 [n, 8, 8], labels uint8 [n]) from scikit-learn's digits."""
  pairs = digit_images(count, offset=offset)
  return (np.stack([p for p, _ in pairs]).astype(np.uint8),
          np.array([label for _, label in pairs], dtype=np.uint8))


def write_tfrecord(path: str, examples, gz: bool = True) -> str:
  """Writes serialized tf.Examples (or raw bytes) to a TFRecord file."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  options = tf.io.TFRecordOptions(compression_type='GZIP' if gz else '')
  with tf.io.TFRecordWriter(path, options) as writer:
    for example in examples:
      writer.write(example if isinstance(example, bytes) else example.SerializeToString())
  return path


def png_header_only(width: int, height: int) -> bytes:
  """A PNG that declares its size and holds no pixels: how a decompression bomb begins."""
  def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
  ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
  return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b'')
