"""IDX files, the MNIST / Fashion-MNIST / EMNIST format: image and label files in pairs."""

import dataclasses
import gzip
import os
import re
import zlib
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import records
from ganpipe.components.image_example_gen.sources import base

# <prefix>images-idx3-ubyte[.gz] pairs with <prefix>labels-idx1-ubyte[.gz].
_IMAGES = re.compile(r'^(?P<prefix>.*)images[-.]idx(?P<ndim>\d)-ubyte(?:\.gz)?$')
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'),
           0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}
# Records per Beam work item. A gzip member can only be read from its start, so a worker reading
# chunk k decompresses k chunks; 10,000 keeps that to a few passes over a 60,000-image file.


@dataclasses.dataclass(frozen=True)
class IdxHeader:
  dtype: np.dtype
  dims: Tuple[int, ...]
  size: int  # bytes before the data

  @property
  def count(self) -> int:
    return self.dims[0]

  @property
  def record_bytes(self) -> int:
    return int(np.prod(self.dims[1:], dtype=np.int64)) * np.dtype(self.dtype).itemsize


def _open(path: str) -> BinaryIO:
  raw = tf.io.gfile.GFile(path, 'rb')
  return gzip.GzipFile(fileobj=raw, mode='rb') if path.endswith('.gz') else raw


def read_header(f: BinaryIO, path: str) -> IdxHeader:
  """Parses an IDX header: two zero bytes, a dtype code, the number of dims, then the dims."""
  magic = f.read(4)
  if len(magic) != 4 or magic[:2] != b'\0\0' or magic[2] not in _DTYPES:
    raise ValueError(f'{path} is not an IDX file (magic {magic!r})')
  ndim = magic[3]
  dims_bytes = f.read(4 * ndim)
  if len(dims_bytes) != 4 * ndim:
    raise ValueError(f'{path}: truncated IDX header')
  dims = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype='>u4'))
  return IdxHeader(np.dtype(_DTYPES[magic[2]]), dims, 4 + 4 * ndim)


def _data_bytes(path: str, header: IdxHeader) -> int:
  """How many bytes follow the header; a gzip file is read through once to count them."""
  if not path.endswith('.gz'):
    return tf.io.gfile.stat(path).length - header.size
  total = 0
  with _open(path) as f:
    while True:
      block = f.read(1 << 20)
      if not block:
        return total - header.size
      total += len(block)


def check_file(path: str, labels: bool, max_pixels: int = options.MAX_PIXELS) -> IdxHeader:
  """The header of an IDX file of labels or images, once it is known to fit the file's bytes.

  Raises:
    ValueError: the file is not IDX, its records have the wrong dimensions or too many pixels,
      or its length is not the header's count times the record size.
  """
  try:
    header = file_header(path)
    found = _data_bytes(path, header)
  except (OSError, EOFError, zlib.error) as error:  # a .gz file that is not gzip, or is cut
    raise ValueError(f'{path} cannot be read: {error}') from None
  record_dims = header.dims[1:]
  if labels and (not header.dims or record_dims):
    raise ValueError(f'{path}: records of {len(record_dims)} dimensions {list(record_dims)}; '
                     'labels have none')
  if not labels:
    base.check_image_dims(path, record_dims, max_pixels)
  base.check_length(path, header.count, header.record_bytes, found)
  return header


def read_records(path: str, start: int, stop: int) -> np.ndarray:
  """Records [start, stop) of an IDX file, without reading the rest into memory."""
  with _open(path) as f:
    header = read_header(f, path)
    stop = min(stop, header.count)
    f.seek(header.size + start * header.record_bytes)
    data = f.read((stop - start) * header.record_bytes)
  values = np.frombuffer(data, dtype=header.dtype)
  return values.reshape((-1,) + header.dims[1:])


def file_header(path: str) -> IdxHeader:
  with _open(path) as f:
    return read_header(f, path)


@dataclasses.dataclass(frozen=True)
class IdxPair:
  images: str
  labels: str
  split: Optional[str]  # `train`, `eval` or None


def find_pairs(root: str) -> List[IdxPair]:
  """Image/label file pairs in `root`; `train*` files are train, `t10k*` and `test*` eval."""
  files = sorted(tf.io.gfile.listdir(root))
  pairs = []
  for name in files:
    match = _IMAGES.match(name)
    if not match:
      continue
    prefix = match.group('prefix')
    candidates = [f for f in files if re.match(rf'^{re.escape(prefix)}labels[-.]idx1-ubyte'
                                                 r'(?:\.gz)?$', f)]
    if not candidates:
      raise FileNotFoundError(f'{os.path.join(root, name)} has no labels file '
                              f'{prefix}labels-idx1-ubyte[.gz] beside it')
    lowered = prefix.lower()
    split = 'train' if 'train' in lowered else (
        'eval' if 't10k' in lowered or 'test' in lowered else None)
    pairs.append(IdxPair(os.path.join(root, name), os.path.join(root, candidates[0]), split))
  if not pairs:
    raise FileNotFoundError(f'no IDX image files (*images-idx3-ubyte[.gz]) in {root!r}')
  return pairs


class IdxSource(base.ImageSource):
  """Pairs of IDX image and label files in one folder.

  Class ids index the sorted label values; names come from `class_names` (by label value) when
  given, else are the label values themselves.
  """

  def __init__(self, root: str, class_names: Optional[Sequence[str]] = None,
               max_pixels: int = options.MAX_PIXELS):
    """`max_pixels`: the ImagePolicy's limit; larger images fail here, before any is read."""
    if not tf.io.gfile.isdir(root):
      raise FileNotFoundError(f'IDX folder {root!r} does not exist')
    self._root = root
    self._pairs = find_pairs(root)
    values = set()
    for pair in self._pairs:
      check_file(pair.images, labels=False, max_pixels=max_pixels)
      labels = check_file(pair.labels, labels=True)
      # Labels are one byte each: reading them all is cheap, and it fixes the class map.
      values.update(int(v) for v in read_records(pair.labels, 0, labels.count))
    self._label_values = sorted(values)
    if class_names is not None and any(v >= len(class_names) for v in self._label_values):
      raise ValueError(f'labels {self._label_values} do not fit {len(class_names)} class names')
    self._class_names = [class_names[v] if class_names is not None else str(v)
                         for v in self._label_values]

  @property
  def class_names(self) -> List[str]:
    return list(self._class_names)

  def given_splits(self) -> Optional[Dict[str, str]]:
    splits = {pair.split for pair in self._pairs}
    return {'train': 'train', 'eval': 'eval'} if splits == {'train', 'eval'} else None

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    pairs = [p for p in self._pairs if split is None or p.split == split]
    work = []
    for pair in pairs:
      work += base.chunks(pair, file_header(pair.images).count, file_header(pair.labels).count)
    ids = {value: index for index, value in enumerate(self._label_values)}
    return base.read_chunks(work, _read_chunk, ids, self._class_names, self._root)


def _read_chunk(item, ids: Dict[int, int], names: List[str], root: str) -> Iterator:
  pair, start, stop = item
  image_name = os.path.relpath(pair.images, root)
  images, labels = file_header(pair.images), file_header(pair.labels)
  if start >= min(images.count, labels.count):
    detail = f'{images.count} images but {labels.count} labels'
    longer = pair.images if images.count > labels.count else pair.labels
    for index in range(start, stop):
      yield records.Rejected(f'{os.path.relpath(longer, root)}:{index}',
                             records.COUNT_MISMATCH, detail)
    return
  pixels = read_records(pair.images, start, stop)
  values = read_records(pair.labels, start, stop)
  for offset, (image, value) in enumerate(zip(pixels, values)):
    class_id = ids[int(value)]
    yield records.RawImage(f'{image_name}:{start + offset}', class_id, names[class_id], image)
