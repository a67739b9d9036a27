"""Decoding, normalising and encoding images, and the tf.Example layout ImageExampleGen writes."""

import io
from typing import Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError
import tensorflow as tf

# The output schema: one tf.Example per image.
IMAGE_KEY = 'image'            # bytes: PNG, normalised to the configured size and channels
LABEL_KEY = 'label'            # int64: class id, the index of the class name in sorted order
LABEL_NAME_KEY = 'label_name'  # bytes: class name
HEIGHT_KEY = 'height'          # int64
WIDTH_KEY = 'width'            # int64
CHANNELS_KEY = 'channels'      # int64: 1 (grayscale) or 3 (RGB)
SOURCE_KEY = 'source'          # bytes: relative path, or "<file>:<index>"; the split hash key

_PIL_MODE = {1: 'L', 3: 'RGB'}
# 8-bit PIL modes that convert to grayscale or RGB without losing range.
SUPPORTED_MODES = frozenset({'1', 'L', 'LA', 'P', 'PA', 'RGB', 'RGBA', 'RGBX', 'CMYK', 'YCbCr'})


class ImageError(ValueError):
  """An input record that cannot become an example; `reason` is a short category."""

  def __init__(self, reason: str, detail: str):
    self.reason = reason
    self.detail = detail
    super().__init__(f'{reason}: {detail}')


def normalize_image(data: bytes, shape: Tuple[int, int, int]) -> np.ndarray:
  """Decodes encoded image bytes and converts them to `shape` (height, width, channels), uint8.

  Raises:
    ImageError: the bytes are empty, not an image, truncated or corrupt.
  """
  if not data:
    raise ImageError('zero_byte', 'the file is empty')
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      converted = _convert(image, shape)
  except ImageError:
    raise
  except UnidentifiedImageError:
    raise ImageError('not_an_image', 'not a recognised image format') from None
  except (OSError, SyntaxError, ValueError) as error:  # how PIL reports truncation and corruption
    raise ImageError('corrupt', str(error)) from None
  return converted


def _convert(image: Image.Image, shape: Tuple[int, int, int]) -> np.ndarray:
  height, width, channels = shape
  if image.mode not in SUPPORTED_MODES:
    # 16-bit and float images would be clipped, not scaled, by a conversion to 8 bits.
    raise ImageError('unsupported_mode', f'image mode {image.mode!r} is not 8-bit grayscale, '
                     'palette or colour')
  image = image.convert(_PIL_MODE[channels])
  if image.size != (width, height):
    image = image.resize((width, height), Image.Resampling.BILINEAR)
  pixels = np.asarray(image, dtype=np.uint8)
  return pixels.reshape(height, width, channels)


def encode_png(pixels: np.ndarray) -> bytes:
  """Encodes a (height, width, channels) uint8 array as PNG."""
  if pixels.ndim != 3 or pixels.shape[2] not in _PIL_MODE:
    raise ValueError(f'expected (height, width, 1 or 3) pixels, got shape {pixels.shape}')
  buffer = io.BytesIO()
  mode = _PIL_MODE[pixels.shape[2]]
  Image.fromarray(pixels[:, :, 0] if mode == 'L' else pixels, mode=mode).save(buffer, 'PNG')
  return buffer.getvalue()


def make_example(pixels: np.ndarray, label: int, label_name: str, source: str) -> tf.train.Example:
  """Builds the tf.Example for one normalised image."""
  height, width, channels = pixels.shape

  def int_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

  def bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      IMAGE_KEY: bytes_feature(encode_png(pixels)),
      LABEL_KEY: int_feature(label),
      LABEL_NAME_KEY: bytes_feature(label_name.encode('utf-8')),
      HEIGHT_KEY: int_feature(height),
      WIDTH_KEY: int_feature(width),
      CHANNELS_KEY: int_feature(channels),
      SOURCE_KEY: bytes_feature(source.encode('utf-8')),
  }))
