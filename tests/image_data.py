"""Small image datasets for tests, made from scikit-learn's digits."""

import gzip
import os
import struct
import zlib
from typing import Dict, Iterable, Optional, Sequence, Tuple

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


def write_transformed(root: str, splits: Sequence[Tuple[np.ndarray, np.ndarray]]):
  """Transformed examples and their schema, laid out as Transform writes them under `root`.

  Args:
    root: an empty folder.
    splits: (images, labels) of the train and the eval split; images are float32 [n, h, w, c].

  Returns:
    FnArgs as TFX's Trainer builds them from the Examples and TransformGraph artifacts
    (tfx/components/trainer/fn_args_utils.py, get_common_fn_args).
  """
  from tfx.components.trainer import fn_args_utils  # pylint: disable=g-import-not-at-top
  examples, transform_graph = write_transformed_artifacts(root, splits)
  fn_args = fn_args_utils.get_common_fn_args(
      {'examples': [examples], 'transform_graph': [transform_graph]},
      {'train_args': '{}', 'eval_args': '{}', 'custom_config': 'null'})
  # As TFX's Trainer executor sets it (tfx/components/trainer/executor.py, _GetFnArgs).
  fn_args.transform_output = fn_args.transform_graph_path
  return fn_args


def write_transformed_artifacts(root: str, splits: Sequence[Tuple[np.ndarray, np.ndarray]]):
  """As `write_transformed`; returns the Examples and TransformGraph artifacts instead."""
  # Imported here: most tests that use this module need no TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
  from tfx.types import standard_artifacts

  from ganpipe.models import features
  shape = splits[0][0].shape[1:]
  spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(shape, tf.float32),
          features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
  metadata_io.write_metadata(dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(spec)),
      os.path.join(root, 'transform', 'transformed_metadata'))
  for name, (images, labels) in zip(('train', 'eval'), splits):
    os.makedirs(os.path.join(root, 'examples', f'Split-{name}'))
    path = os.path.join(root, 'examples', f'Split-{name}', 'transformed_examples-00000.gz')
    with tf.io.TFRecordWriter(path, 'GZIP') as writer:
      for image, label in zip(images, labels):
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(
                float_list=tf.train.FloatList(value=image.reshape(-1))),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        })).SerializeToString())
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(root, 'examples')
  examples.split_names = '["train", "eval"]'
  examples.set_string_custom_property('payload_format', 'FORMAT_TF_EXAMPLE')
  transform_graph = standard_artifacts.TransformGraph()
  transform_graph.uri = os.path.join(root, 'transform')
  return examples, transform_graph
