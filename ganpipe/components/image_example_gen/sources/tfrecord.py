"""TFRecords of tf.Examples that already follow ImageExampleGen's schema: validated, passed on."""

import io
import os
from typing import Dict, Iterator, List, Optional

import apache_beam as beam
from google.protobuf import message
from PIL import Image
import tensorflow as tf

from ganpipe.components.image_example_gen import records
from ganpipe.components.image_example_gen.sources import base
from ganpipe.components.image_example_gen.sources import files as files_lib
from ganpipe.models import features

GIVEN_SPLIT_DIRS = ({'train': 'train', 'eval': 'eval'}, {'train': 'train', 'eval': 'test'})
# feature -> (kind in the tf.train.Feature oneof)
SCHEMA = {
    features.IMAGE_KEY: 'bytes_list',
    features.LABEL_KEY: 'int64_list',
    features.LABEL_NAME_KEY: 'bytes_list',
    features.HEIGHT_KEY: 'int64_list',
    features.WIDTH_KEY: 'int64_list',
    features.CHANNELS_KEY: 'int64_list',
    features.SOURCE_KEY: 'bytes_list',
}
_BANDS = {1: ('L', '1', 'P', 'LA'), 3: ('RGB', 'RGBA', 'P', 'CMYK', 'YCbCr', 'RGBX')}


def is_tfrecord(name: str) -> bool:
  return 'tfrecord' in name.lower()


def check_schema(example: tf.train.Example) -> None:
  """Raises ValueError naming the first way `example` departs from the schema."""
  by_name = example.features.feature
  for name, kind in SCHEMA.items():
    if name not in by_name:
      raise ValueError(f'feature {name!r} is missing')
    feature = by_name[name]
    if feature.WhichOneof('kind') != kind:
      raise ValueError(f'feature {name!r} is {feature.WhichOneof("kind")}, expected {kind}')
    if len(getattr(feature, kind).value) != 1:
      raise ValueError(f'feature {name!r} has {len(getattr(feature, kind).value)} values, '
                       'expected 1')
  label = by_name[features.LABEL_KEY].int64_list.value[0]
  if label < 0:
    raise ValueError(f'label {label} is negative')
  name = by_name[features.LABEL_NAME_KEY].bytes_list.value[0]
  try:
    name.decode('utf-8')
  except UnicodeDecodeError as error:
    raise ValueError(f'label_name {name[:40]!r} is not UTF-8: {error.reason}') from None
  height = by_name[features.HEIGHT_KEY].int64_list.value[0]
  width = by_name[features.WIDTH_KEY].int64_list.value[0]
  channels = by_name[features.CHANNELS_KEY].int64_list.value[0]
  if channels not in _BANDS:
    raise ValueError(f'channels is {channels}, expected 1 or 3')
  data = by_name[features.IMAGE_KEY].bytes_list.value[0]
  try:
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
      size, mode = image.size, image.mode
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
    return  # not decodable, or too large to: ToExamples gives the precise reason
  if size != (width, height):
    raise ValueError(f'height/width say {height}x{width}, the image is {size[1]}x{size[0]}')
  if mode not in _BANDS[channels]:
    raise ValueError(f'channels says {channels}, the image mode is {mode}')


class TfRecordSource(base.ImageSource):
  """TFRecord files (`*tfrecord*`, gzipped if `.gz`) under a folder, in the output schema.

  `root/train/` and `root/eval/` (or `root/test/`) are given splits. Labels are kept; the class
  map is learned from the (label, label_name) pairs in the data.
  """

  def __init__(self, root: str):
    if not tf.io.gfile.isdir(root):
      raise FileNotFoundError(f'TFRecord folder {root!r} does not exist')
    self._root = root.rstrip('/')
    top = {entry.rstrip('/') for entry in tf.io.gfile.listdir(self._root)}
    self._split_dirs = next((dict(layout) for layout in GIVEN_SPLIT_DIRS
                             if set(layout.values()) <= top), None)
    if not self._files(None):
      raise FileNotFoundError(f'no TFRecord files (*tfrecord*) under {root!r}')

  @property
  def class_names(self) -> Optional[List[str]]:
    return None  # learned from the data

  def given_splits(self) -> Optional[Dict[str, str]]:
    return {out: out for out in self._split_dirs} if self._split_dirs else None

  def _files(self, split: Optional[str]) -> List[str]:
    base_dir = self._root
    if split is not None:
      base_dir = os.path.join(self._root, self._split_dirs[split])
    found = []
    for directory, names in files_lib.walk(base_dir):
      found.extend(os.path.join(directory, f) for f in names if is_tfrecord(f))
    return sorted(found)

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    files = self._files(split)
    root = self._root

    @beam.ptransform_fn
    def _read(pipeline):
      return (pipeline
              | 'Files' >> beam.Create(files)
              | 'ReadRecords' >> beam.FlatMap(_read_file, root)
              | 'Distribute' >> beam.Reshuffle())

    return _read()  # pylint: disable=no-value-for-parameter


def _read_file(path: str, root: str) -> Iterator[records.Record]:
  name = os.path.relpath(path, root)
  dataset = tf.data.TFRecordDataset(path, compression_type='GZIP' if path.endswith('.gz') else '')
  index = -1
  try:
    for index, serialized in enumerate(dataset.as_numpy_iterator()):
      yield _to_record(serialized, f'{name}:{index}')
  except (tf.errors.DataLossError, tf.errors.OpError) as error:
    yield records.Rejected(f'{name}:{index + 1}', records.UNREADABLE,
                           f'the file is corrupt after {index + 1} records: {error.message}')


def _to_record(serialized: bytes, position: str) -> records.Record:
  try:
    example = tf.train.Example.FromString(serialized)
  except message.DecodeError as error:
    return records.Rejected(position, records.SCHEMA_MISMATCH, f'not a tf.Example: {error}')
  by_name = example.features.feature
  key = position
  if features.SOURCE_KEY in by_name and by_name[features.SOURCE_KEY].bytes_list.value:
    key = by_name[features.SOURCE_KEY].bytes_list.value[0].decode('utf-8', 'replace')
  try:
    check_schema(example)
  except ValueError as error:
    return records.Rejected(key, records.SCHEMA_MISMATCH, f'{position}: {error}')
  return records.RawImage(key, int(by_name[features.LABEL_KEY].int64_list.value[0]),
                          by_name[features.LABEL_NAME_KEY].bytes_list.value[0].decode('utf-8'),
                          by_name[features.IMAGE_KEY].bytes_list.value[0])
