"""The Transform preprocessing, run eagerly, inside a tf.function and as a real Transform graph."""

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from ganpipe.models import preprocessing
from tests import image_data


def _encode(pixels: np.ndarray, fmt: str = 'PNG') -> bytes:
  buffer = io.BytesIO()
  mode = 'L' if pixels.shape[-1] == 1 else 'RGB'
  Image.fromarray(pixels.squeeze(-1) if mode == 'L' else pixels, mode).save(buffer, fmt)
  return buffer.getvalue()


@pytest.fixture(scope='module')
def digit_pngs():
  pairs = image_data.digit_images(6)
  return [p[..., np.newaxis] for p, _ in pairs], [_encode(p[..., np.newaxis]) for p, _ in pairs]


def test_decode_scales_to_unit_interval_exactly(digit_pngs):
  pixels, encoded = digit_pngs
  decoded = preprocessing.decode_images(tf.constant(encoded), (8, 8, 1)).numpy()
  assert decoded.shape == (6, 8, 8, 1) and decoded.dtype == np.float32
  np.testing.assert_allclose(decoded, np.stack(pixels) / 255.0, atol=1e-6)


def test_eager_and_tf_function_agree(digit_pngs):
  _, encoded = digit_pngs
  eager = preprocessing.decode_images(tf.constant(encoded), (8, 8, 1))
  graph = tf.function(lambda x: preprocessing.decode_images(x, (8, 8, 1)))(tf.constant(encoded))
  np.testing.assert_array_equal(eager.numpy(), graph.numpy())


def test_other_sizes_formats_and_colours_are_converted():
  rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
  jpeg = _encode(rgb, 'JPEG')
  gray = preprocessing.decode_images(tf.constant([jpeg]), (8, 8, 1))
  colour = preprocessing.decode_images(tf.constant([_encode(rgb)]), (8, 8, 3))
  assert gray.shape == (1, 8, 8, 1) and colour.shape == (1, 8, 8, 3)
  for decoded in (gray, colour):
    assert 0.0 <= float(tf.reduce_min(decoded)) and float(tf.reduce_max(decoded)) <= 1.0


def test_preprocessing_fn_flattens_label_and_keeps_only_model_inputs(digit_pngs):
  _, encoded = digit_pngs
  outputs = preprocessing.preprocessing_fn(
      {'image': tf.constant([[e] for e in encoded]), 'label': tf.constant([[3]] * 6, tf.int64),
       'source': tf.constant([[b'x']] * 6)},
      {preprocessing.IMAGE_SHAPE: [8, 8, 1]})
  assert set(outputs) == {'image', 'label'}
  assert outputs['label'].shape == (6,)
  assert outputs['image'].shape == (6, 8, 8, 1)


def test_inside_a_transform_graph_matches_eager(tmp_path, digit_pngs):
  import tensorflow_transform.beam as tft_beam  # pylint: disable=import-outside-toplevel
  from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils  # pylint: disable=import-outside-toplevel
  _, encoded = digit_pngs
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      'image': tf.io.FixedLenFeature([1], tf.string),
      'label': tf.io.FixedLenFeature([1], tf.int64)}))
  with tft_beam.Context(temp_dir=str(tmp_path)):
    (transformed, _), _ = (
        ([{'image': [e], 'label': [i]} for i, e in enumerate(encoded)], metadata)
        | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(
                inputs, {preprocessing.IMAGE_SHAPE: [8, 8, 1]})))
  eager = preprocessing.decode_images(tf.constant(encoded), (8, 8, 1)).numpy()
  for label, (row, expected) in enumerate(zip(transformed, eager)):
    np.testing.assert_allclose(np.reshape(row['image'], (8, 8, 1)), expected, atol=1e-6)
    assert row['label'] == label
