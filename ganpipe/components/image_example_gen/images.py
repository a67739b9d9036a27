"""Decoding, normalising and encoding images into the examples ImageExampleGen writes."""

import dataclasses
import io
import json
import struct
from typing import Optional, Tuple
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError
import tensorflow as tf

from ganpipe.components.image_example_gen import options
from ganpipe.models import features

# Why a record was rejected.
ZERO_BYTE = 'zero_byte'
NOT_AN_IMAGE = 'not_an_image'
CORRUPT = 'corrupt'
UNSUPPORTED_MODE = 'unsupported_mode'
WRONG_SIZE = 'wrong_size'
FORMAT_NOT_ACCEPTED = 'format_not_accepted'
TOO_LARGE = 'too_large'


def max_file_bytes(max_pixels: int) -> int:
  """The largest file an image of `max_pixels` can be: uncompressed RGBA, and 16 MiB of
  metadata (ICC profiles, EXIF). A larger file is not read into memory."""
  return 4 * max_pixels + 16 * 2**20


_PIL_MODE = {1: 'L', 3: 'RGB'}
# 8-bit PIL modes that convert to grayscale or RGB without losing range.
SUPPORTED_MODES = frozenset({'1', 'L', 'LA', 'P', 'PA', 'RGB', 'RGBA', 'RGBX', 'CMYK', 'YCbCr'})


class ImageError(ValueError):
  """An input record that cannot become an example; `reason` is one of the constants above."""

  def __init__(self, reason: str, detail: str):
    self.reason = reason
    self.detail = detail
    super().__init__(f'{reason}: {detail}')


@dataclasses.dataclass(frozen=True)
class ImagePolicy:
  """How every image is normalised on the way in.

  Attributes:
    shape: (height, width, channels) of every output image; channels 1 or 3.
    on_wrong_size: `resize` images of another size, or `reject` them.
    formats: accepted encodings of file-based images (PIL names, lower case).
    max_pixels: larger input images are rejected as `too_large`, unread.
  """
  shape: Tuple[int, int, int]
  on_wrong_size: str = options.RESIZE
  formats: Tuple[str, ...] = options.DEFAULT_FORMATS
  max_pixels: int = options.MAX_PIXELS

  def __post_init__(self):
    if self.on_wrong_size not in options.WRONG_SIZE_POLICIES:
      raise ValueError(f'on_wrong_size must be one of {", ".join(options.WRONG_SIZE_POLICIES)}, '
                       f'got {self.on_wrong_size!r}')
    unknown = set(self.formats) - set(options.FORMAT_NAMES)
    if unknown:
      raise ValueError(f'unknown image formats {sorted(unknown)}; known: '
                       f'{", ".join(options.FORMAT_NAMES)}')
    if self.shape[2] not in _PIL_MODE:
      raise ValueError(f'channels must be 1 or 3, got {self.shape[2]}')
    if self.max_pixels < self.shape[0] * self.shape[1]:
      raise ValueError(f'max_pixels {self.max_pixels} is less than the output image '
                       f'{self.shape[0]}x{self.shape[1]}')

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'ImagePolicy':
    values = json.loads(text)
    return cls(shape=tuple(values['shape']), on_wrong_size=values['on_wrong_size'],
               formats=tuple(values['formats']),
               max_pixels=values.get('max_pixels', options.MAX_PIXELS))


def normalize_image(data: bytes, policy: ImagePolicy) -> np.ndarray:
  """Decodes encoded image bytes and converts them per `policy`; returns uint8 (h, w, c).

  Raises:
    ImageError: the bytes are empty, not an image, truncated or corrupt, in a format or mode the
      policy does not accept, larger than its `max_pixels`, or of the wrong size under the
      reject policy.
  """
  if not data:
    raise ImageError(ZERO_BYTE, 'the file is empty')
  accepted = {options.FORMAT_ALIASES.get(f, f) for f in policy.formats}
  try:
    with Image.open(io.BytesIO(data)) as image:
      image_format = (image.format or '').lower()
      if image_format not in accepted:
        raise ImageError(FORMAT_NOT_ACCEPTED,
                         f'{image_format or "unknown"} is not one of {", ".join(sorted(accepted))}')
      _check_pixels(image.size, policy)  # from the header: a bomb is never decoded
      image.load()
      return _convert(image, policy)
  except ImageError:
    raise
  except UnidentifiedImageError:
    raise ImageError(NOT_AN_IMAGE, 'not a recognised image format') from None
  except Image.DecompressionBombError as error:  # PIL's own limit, whatever max_pixels says
    raise ImageError(TOO_LARGE, str(error)) from None
  except (OSError, SyntaxError, ValueError) as error:  # how PIL reports truncation and corruption
    raise ImageError(CORRUPT, str(error)) from None


def normalize_pixels(pixels: np.ndarray, policy: ImagePolicy) -> np.ndarray:
  """Converts a decoded uint8 (h, w) or (h, w, 1|3|4) array per `policy`.

  Raises:
    ImageError: the array's shape or dtype is not an 8-bit image, or its size is wrong under the
      reject policy.
  """
  if pixels.dtype != np.uint8:
    raise ImageError(UNSUPPORTED_MODE, f'pixels of dtype {pixels.dtype} are not 8-bit')
  height, width, channels = policy.shape
  wanted = [(height, width, channels)] + ([(height, width)] if channels == 1 else [])
  if pixels.shape in wanted:
    # Already what the policy asks for (IDX and npz sources): PIL's convert and resize would
    # return the same pixels, at 40 us an image.
    return pixels.reshape(height, width, channels)
  if pixels.ndim == 3 and pixels.shape[2] == 1:
    pixels = pixels[:, :, 0]
  modes = {2: 'L', 3: {3: 'RGB', 4: 'RGBA'}}
  mode = modes.get(pixels.ndim)
  if isinstance(mode, dict):
    mode = mode.get(pixels.shape[2])
  if mode is None:
    raise ImageError(UNSUPPORTED_MODE, f'an array of shape {pixels.shape} is not an image')
  _check_pixels((pixels.shape[1], pixels.shape[0]), policy)
  return _convert(Image.fromarray(pixels, mode=mode), policy)


def _check_pixels(size: Tuple[int, int], policy: ImagePolicy) -> None:
  width, height = size
  if width * height > policy.max_pixels:
    raise ImageError(TOO_LARGE, f'{height}x{width} is {width * height} pixels, more than the '
                     f'{policy.max_pixels} allowed')


def _convert(image: Image.Image, policy: ImagePolicy) -> np.ndarray:
  height, width, channels = policy.shape
  if image.mode not in SUPPORTED_MODES:
    # 16-bit and float images would be clipped, not scaled, by a conversion to 8 bits.
    raise ImageError(UNSUPPORTED_MODE, f'image mode {image.mode!r} is not 8-bit grayscale, '
                     'palette or colour')
  if image.size != (width, height) and policy.on_wrong_size == options.REJECT:
    raise ImageError(WRONG_SIZE, f'{image.size[1]}x{image.size[0]} is not {height}x{width}')
  image = image.convert(_PIL_MODE[channels])
  if image.size != (width, height):
    image = image.resize((width, height), Image.Resampling.BILINEAR)
  return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_COLOUR_TYPE = {1: 0, 3: 2}  # greyscale, truecolour (PNG spec, 11.2.2 IHDR)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  """Length, type, data and the CRC-32 of type and data (PNG spec, 5.3)."""
  crc = zlib.crc32(data, zlib.crc32(kind))
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', crc)


def encode_png(pixels: np.ndarray) -> bytes:
  """Encodes a (height, width, channels) uint8 array as an 8-bit greyscale or RGB PNG.

  Written directly: the filter byte 0 (None) before each row, one zlib stream at zlib's default
  level, as PIL writes an unoptimised PNG. PIL's save spends 65 us on a 28x28 image in Python
  around the same zlib call; this takes half of that, and the pixels decode the same
  (tests/components/image_example_gen/test_images.py decodes them with PIL and tf.io.decode_png).
  """
  if pixels.ndim != 3 or pixels.shape[2] not in _PIL_MODE or pixels.dtype != np.uint8:
    raise ValueError(f'expected (height, width, 1 or 3) uint8 pixels, got shape {pixels.shape} '
                     f'of {pixels.dtype}')
  height, width, channels = pixels.shape
  rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
  rows[:, 1:] = pixels.reshape(height, width * channels)
  header = struct.pack('>IIBBBBB', width, height, 8, _PNG_COLOUR_TYPE[channels], 0, 0, 0)
  return (_PNG_SIGNATURE + _png_chunk(b'IHDR', header)
          + _png_chunk(b'IDAT', zlib.compress(rows.tobytes())) + _png_chunk(b'IEND', b''))


def original_size(data) -> Tuple[int, int]:
  """(height, width) of an image as read: decoded pixels, or encoded bytes (from the header)."""
  if isinstance(data, np.ndarray):
    return int(data.shape[0]), int(data.shape[1])
  with Image.open(io.BytesIO(data)) as image:
    return image.size[1], image.size[0]


def make_example(pixels: np.ndarray, label: int, label_name: str, source: str,
                 size: Optional[Tuple[int, int]] = None) -> tf.train.Example:
  """Builds the tf.Example for one normalised image; `size` is its original (height, width),
  by default the normalised one."""
  height, width, channels = pixels.shape
  size = size or (height, width)

  def int_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

  def bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: bytes_feature(encode_png(pixels)),
      features.LABEL_KEY: int_feature(label),
      features.LABEL_NAME_KEY: bytes_feature(label_name.encode('utf-8')),
      features.HEIGHT_KEY: int_feature(height),
      features.WIDTH_KEY: int_feature(width),
      features.CHANNELS_KEY: int_feature(channels),
      features.SOURCE_KEY: bytes_feature(source.encode('utf-8')),
      features.ORIGINAL_HEIGHT_KEY: int_feature(size[0]),
      features.ORIGINAL_WIDTH_KEY: int_feature(size[1]),
      features.MEAN_INTENSITY_KEY: tf.train.Feature(float_list=tf.train.FloatList(
          value=[float(pixels.mean()) / 255.0])),
  }))
