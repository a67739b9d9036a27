"""Decoding and normalising single images, and the tf.Example layout."""

import io

import numpy as np
from PIL import Image
import pytest

from components.image_example_gen import images


def _encode(image: Image.Image, fmt: str = 'PNG') -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, fmt)
  return buffer.getvalue()


def test_grayscale_png_round_trips():
  pixels = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 3
  assert np.array_equal(images.normalize_image(images.encode_png(pixels), (8, 8, 1)), pixels)


def test_colour_is_converted_to_grayscale_and_back():
  rgb = Image.new('RGB', (8, 8), (255, 0, 0))
  gray = images.normalize_image(_encode(rgb), (8, 8, 1))
  assert gray.shape == (8, 8, 1)
  assert int(gray[0, 0, 0]) == 76  # ITU-R 601 luma of pure red
  back = images.normalize_image(_encode(Image.new('L', (8, 8), 200)), (8, 8, 3))
  assert back.shape == (8, 8, 3) and np.all(back == 200)


def test_resizes_to_target_shape():
  resized = images.normalize_image(_encode(Image.new('RGB', (40, 30), (10, 20, 30)), 'JPEG'),
                                   (16, 12, 3))
  assert resized.shape == (16, 12, 3)


def test_palette_and_alpha_images_are_accepted():
  palette = Image.new('P', (8, 8), 3)
  rgba = Image.new('RGBA', (8, 8), (0, 0, 255, 128))
  assert images.normalize_image(_encode(palette), (8, 8, 3)).shape == (8, 8, 3)
  assert images.normalize_image(_encode(rgba), (8, 8, 1)).shape == (8, 8, 1)


@pytest.mark.parametrize('data, reason', [
    (b'', 'zero_byte'),
    (b'hello, I am a text file', 'not_an_image'),
])
def test_unusable_bytes_get_a_reason(data, reason):
  with pytest.raises(images.ImageError, match=reason) as raised:
    images.normalize_image(data, (8, 8, 1))
  assert raised.value.reason == reason


def test_truncated_file_is_corrupt():
  data = _encode(Image.new('RGB', (64, 64), (1, 2, 3)), 'JPEG')
  with pytest.raises(images.ImageError, match='corrupt') as raised:
    images.normalize_image(data[:len(data) // 2], (8, 8, 1))
  assert raised.value.reason == 'corrupt'


def test_sixteen_bit_images_are_an_unsupported_mode():
  deep = Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16))
  with pytest.raises(images.ImageError, match='unsupported_mode') as raised:
    images.normalize_image(_encode(deep), (8, 8, 1))
  assert raised.value.reason == 'unsupported_mode'


def test_example_layout():
  pixels = np.zeros((4, 6, 3), dtype=np.uint8)
  example = images.make_example(pixels, 2, 'cat', 'cat/0001.png')
  feature = example.features.feature
  assert feature['label'].int64_list.value == [2]
  assert feature['label_name'].bytes_list.value == [b'cat']
  assert feature['source'].bytes_list.value == [b'cat/0001.png']
  assert (feature['height'].int64_list.value, feature['width'].int64_list.value,
          feature['channels'].int64_list.value) == ([4], [6], [3])
  assert feature['image'].bytes_list.value[0].startswith(b'\x89PNG')


def test_encode_png_rejects_bad_shapes():
  with pytest.raises(ValueError, match='expected'):
    images.encode_png(np.zeros((8, 8, 2), dtype=np.uint8))
