"""Decoding and normalising single images under an image policy, and the tf.Example layout."""

import io

import numpy as np
from PIL import Image
import pytest

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import options
from tests import image_data


def _encode(image: Image.Image, fmt: str = 'PNG') -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, fmt)
  return buffer.getvalue()


def _policy(shape=(8, 8, 1), **kwargs):
  return images.ImagePolicy(shape, **kwargs)


def test_grayscale_png_round_trips():
  pixels = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 3
  assert np.array_equal(images.normalize_image(images.encode_png(pixels), _policy()), pixels)


def test_colour_is_converted_to_grayscale_and_back():
  gray = images.normalize_image(_encode(Image.new('RGB', (8, 8), (255, 0, 0))), _policy())
  assert gray.shape == (8, 8, 1)
  assert int(gray[0, 0, 0]) == 76  # ITU-R 601 luma of pure red
  back = images.normalize_image(_encode(Image.new('L', (8, 8), 200)), _policy((8, 8, 3)))
  assert back.shape == (8, 8, 3) and np.all(back == 200)


def test_resize_policy_resizes():
  data = _encode(Image.new('RGB', (40, 30), (10, 20, 30)), 'JPEG')
  assert images.normalize_image(data, _policy((16, 12, 3))).shape == (16, 12, 3)


def test_reject_policy_rejects_other_sizes():
  data = _encode(Image.new('L', (40, 30)))
  with pytest.raises(images.ImageError, match='30x40 is not 8x8') as raised:
    images.normalize_image(data, _policy(on_wrong_size='reject'))
  assert raised.value.reason == images.WRONG_SIZE
  exact = _encode(Image.new('L', (8, 8)))
  assert images.normalize_image(exact, _policy(on_wrong_size='reject')).shape == (8, 8, 1)


def test_formats_outside_the_policy_are_rejected():
  tiff = _encode(Image.new('L', (8, 8)), 'TIFF')
  with pytest.raises(images.ImageError, match='tiff is not one of') as raised:
    images.normalize_image(tiff, _policy())
  assert raised.value.reason == images.FORMAT_NOT_ACCEPTED
  assert images.normalize_image(tiff, _policy(formats=('tiff',))).shape == (8, 8, 1)
  jpeg = _encode(Image.new('L', (8, 8)), 'JPEG')
  assert images.normalize_image(jpeg, _policy(formats=('jpg',))).shape == (8, 8, 1)


def test_palette_and_alpha_images_are_accepted():
  palette = Image.new('P', (8, 8), 3)
  rgba = Image.new('RGBA', (8, 8), (0, 0, 255, 128))
  assert images.normalize_image(_encode(palette), _policy((8, 8, 3))).shape == (8, 8, 3)
  assert images.normalize_image(_encode(rgba), _policy()).shape == (8, 8, 1)


@pytest.mark.parametrize('data, reason', [
    (b'', images.ZERO_BYTE),
    (b'hello, I am a text file', images.NOT_AN_IMAGE),
])
def test_unusable_bytes_get_a_reason(data, reason):
  with pytest.raises(images.ImageError, match=reason) as raised:
    images.normalize_image(data, _policy())
  assert raised.value.reason == reason


def test_truncated_file_is_corrupt():
  data = _encode(Image.new('RGB', (64, 64), (1, 2, 3)), 'JPEG')
  with pytest.raises(images.ImageError, match='corrupt') as raised:
    images.normalize_image(data[:len(data) // 2], _policy())
  assert raised.value.reason == images.CORRUPT


def test_sixteen_bit_images_are_an_unsupported_mode():
  deep = Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16))
  with pytest.raises(images.ImageError, match='unsupported_mode') as raised:
    images.normalize_image(_encode(deep), _policy())
  assert raised.value.reason == images.UNSUPPORTED_MODE


@pytest.mark.parametrize('shape, channels', [((8, 8), 1), ((8, 8, 1), 3), ((8, 8, 3), 1),
                                             ((8, 8, 4), 3)])
def test_pixel_arrays_are_converted(shape, channels):
  pixels = np.full(shape, 100, dtype=np.uint8)
  out = images.normalize_pixels(pixels, _policy((4, 4, channels)))
  assert out.shape == (4, 4, channels) and out.dtype == np.uint8


@pytest.mark.parametrize('pixels, match', [
    (np.zeros((8, 8), dtype=np.float32), 'not 8-bit'),
    (np.zeros((8, 8, 2), dtype=np.uint8), 'is not an image'),
    (np.zeros((8,), dtype=np.uint8), 'is not an image'),
])
def test_unusable_arrays(pixels, match):
  with pytest.raises(images.ImageError, match=match) as raised:
    images.normalize_pixels(pixels, _policy())
  assert raised.value.reason == images.UNSUPPORTED_MODE


@pytest.mark.parametrize('width, height, max_pixels', [
    pytest.param(100_000, 100_000, options.MAX_PIXELS, id='over-our-limit'),
    pytest.param(9_000, 8_000, options.MAX_PIXELS, id='just-over-8192-squared'),
    # Over PIL's own bomb limit (2 x 89,478,485 pixels), when max_pixels would allow it.
    pytest.param(20_000, 10_000, 10**9, id='over-pil-limit'),
])
def test_an_image_with_too_many_pixels_is_rejected_from_its_header(width, height, max_pixels):
  with pytest.raises(images.ImageError) as raised:
    images.normalize_image(image_data.png_header_only(width, height), _policy(max_pixels=max_pixels))
  assert raised.value.reason == images.TOO_LARGE
  assert f'{width * height}' in raised.value.detail


def test_max_pixels_applies_to_files_and_arrays():
  small = _policy(max_pixels=40 * 30 - 1)
  with pytest.raises(images.ImageError, match='30x40 is 1200 pixels, more than the 1199') as raised:
    images.normalize_image(_encode(Image.new('L', (40, 30))), small)
  assert raised.value.reason == images.TOO_LARGE
  with pytest.raises(images.ImageError, match='30x40 is 1200 pixels') as raised:
    images.normalize_pixels(np.zeros((30, 40), np.uint8), small)
  assert raised.value.reason == images.TOO_LARGE
  exact = _policy(max_pixels=40 * 30)
  assert images.normalize_image(_encode(Image.new('L', (40, 30))), exact).shape == (8, 8, 1)
  assert images.normalize_pixels(np.zeros((30, 40), np.uint8), exact).shape == (8, 8, 1)


def test_policy_validation_and_json_round_trip():
  policy = _policy((28, 28, 3), on_wrong_size='reject', formats=('png', 'jpg'), max_pixels=10**6)
  assert images.ImagePolicy.from_json(policy.to_json()) == policy
  with pytest.raises(ValueError, match='on_wrong_size'):
    _policy(on_wrong_size='crop')
  with pytest.raises(ValueError, match='unknown image formats'):
    _policy(formats=('psd',))
  with pytest.raises(ValueError, match='max_pixels 63 is less than the output image 8x8'):
    _policy(max_pixels=63)


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
  # Without an original size, the normalised one; an all-black image has intensity 0.
  assert (feature['original_height'].int64_list.value,
          feature['original_width'].int64_list.value) == ([4], [6])
  assert feature['mean_intensity'].float_list.value == [0.0]


def test_the_example_carries_the_original_size_and_the_mean_intensity():
  pixels = np.full((4, 4, 1), 51, dtype=np.uint8)
  pixels[0, 0, 0] = 255
  feature = images.make_example(pixels, 0, 'a', 'a/1.png', size=(30, 20)).features.feature
  assert (feature['original_height'].int64_list.value[0],
          feature['original_width'].int64_list.value[0]) == (30, 20)
  assert feature['mean_intensity'].float_list.value[0] == pytest.approx((15 * 51 + 255) / 16 / 255)


def test_original_size_reads_arrays_and_the_header_of_encoded_images():
  assert images.original_size(np.zeros((5, 7), dtype=np.uint8)) == (5, 7)
  assert images.original_size(_encode(Image.new('RGB', (9, 3)))) == (3, 9)


def test_encode_png_rejects_bad_shapes():
  with pytest.raises(ValueError, match='expected'):
    images.encode_png(np.zeros((8, 8, 2), dtype=np.uint8))


@pytest.mark.parametrize('shape', [(5, 7, 1), (6, 4, 3), (1, 1, 1), (16, 16, 3)])
def test_png_decodes_to_the_same_pixels_in_pil_and_tensorflow(shape):
  pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
  data = images.encode_png(pixels)
  with Image.open(io.BytesIO(data)) as decoded:
    assert decoded.format == 'PNG' and decoded.mode == ('L' if shape[2] == 1 else 'RGB')
    assert np.array_equal(np.asarray(decoded).reshape(shape), pixels)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  assert np.array_equal(tf.io.decode_png(data, channels=shape[2]).numpy(), pixels)
  # The CRC of every chunk is checked by PIL's verify() (PngImagePlugin.PngStream.crc).
  with Image.open(io.BytesIO(data)) as verified:
    verified.verify()


def test_a_corrupted_png_chunk_fails_its_crc():
  data = bytearray(images.encode_png(np.zeros((4, 4, 1), dtype=np.uint8)))
  data[-13] ^= 0xFF  # IDAT's CRC: the 4 bytes before IEND's 12
  with pytest.raises(SyntaxError, match='broken PNG file'):
    Image.open(io.BytesIO(bytes(data))).verify()


@pytest.mark.parametrize('shape, channels', [((8, 8), 1), ((8, 8, 1), 1), ((8, 8, 3), 3)])
def test_arrays_already_in_the_policys_shape_pass_unchanged(shape, channels):
  pixels = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
  out = images.normalize_pixels(pixels, _policy((8, 8, channels)))
  assert out.shape == (8, 8, channels)
  assert np.array_equal(out.reshape(shape), pixels)


def test_a_greyscale_array_becomes_rgb_under_a_colour_policy():
  pixels = np.full((8, 8), 77, dtype=np.uint8)
  out = images.normalize_pixels(pixels, _policy((8, 8, 3)))
  assert out.shape == (8, 8, 3) and (out == 77).all()
  with pytest.raises(images.ImageError, match='is not an image'):
    images.normalize_pixels(np.zeros((8,), dtype=np.uint8), _policy((8, 8, 3)))
