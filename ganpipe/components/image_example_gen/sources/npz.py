"""NumPy `.npz` archives holding `images`, `labels` and optionally `class_names`."""

import dataclasses
import os
import zipfile
from typing import Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from ganpipe.components.image_example_gen import images as images_lib
from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import records
from ganpipe.components.image_example_gen.sources import base

IMAGES = 'images'
LABELS = 'labels'
CLASS_NAMES = 'class_names'


@dataclasses.dataclass(frozen=True)
class NpyHeader:
  dtype: np.dtype
  shape: Tuple[int, ...]
  offset: int
  data_bytes: int  # what follows the header in the archive member

  @property
  def record_bytes(self) -> int:
    return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def _member_header(archive: zipfile.ZipFile, member: str, path: str) -> NpyHeader:
  with archive.open(member) as f:
    try:
      version = np.lib.format.read_magic(f)
      reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
      shape, fortran_order, dtype = reader(f)
    except ValueError as error:
      raise ValueError(f'{path}: {member} is not a .npy array: {error}') from None
    if fortran_order or dtype.hasobject:
      raise ValueError(f'{path}: {member} must be a C-ordered numeric array')
    return NpyHeader(dtype, tuple(shape), f.tell(), archive.getinfo(member).file_size - f.tell())


def read_member(path: str, name: str, start: int = 0,
                stop: Optional[int] = None) -> np.ndarray:
  """Rows [start, stop) of array `name` in an .npz, reading only those rows' bytes."""
  with tf.io.gfile.GFile(path, 'rb') as raw, zipfile.ZipFile(raw) as archive:
    member = f'{name}.npy'
    header = _member_header(archive, member, path)
    stop = header.shape[0] if stop is None else min(stop, header.shape[0])
    with archive.open(member) as f:
      f.seek(header.offset + start * header.record_bytes)
      data = f.read((stop - start) * header.record_bytes)
  return np.frombuffer(data, dtype=header.dtype).reshape((-1,) + header.shape[1:])


def archive_members(path: str) -> Dict[str, NpyHeader]:
  with tf.io.gfile.GFile(path, 'rb') as raw, zipfile.ZipFile(raw) as archive:
    return {name[:-4]: _member_header(archive, name, path) for name in archive.namelist()
            if name.endswith('.npy')}


def check_archive(path: str, max_pixels: int = options.MAX_PIXELS) -> Dict[str, NpyHeader]:
  """The arrays of an .npz, once `images` and `labels` are known to fit their headers.

  Raises:
    ValueError: the file is not a zip of .npy arrays, lacks `images` or `labels`, or an array's
      shape does not fit its bytes, or is not images (n, h, w[, c]) and labels (n,).
  """
  try:
    members = archive_members(path)
  except (zipfile.BadZipFile, OSError, EOFError, tf.errors.OpError) as error:
    raise ValueError(f'{path} is not a readable .npz archive: {error}') from None
  missing = {IMAGES, LABELS} - set(members)
  if missing:
    raise ValueError(f'{path} lacks the arrays {sorted(missing)}; it needs `images` and '
                     '`labels`')
  labels = members[LABELS]
  if len(labels.shape) != 1:
    raise ValueError(f'{path}: labels of shape {list(labels.shape)}; labels are (n,)')
  base.check_image_dims(f'{path} images', members[IMAGES].shape[1:], max_pixels)
  for name in (IMAGES, LABELS):
    header = members[name]
    base.check_length(f'{path} member {name}.npy', header.shape[0], header.record_bytes,
                      header.data_bytes)
  return members


def split_of(name: str) -> Optional[str]:
  lowered = name.lower()
  if lowered.startswith('train'):
    return 'train'
  if lowered.startswith(('test', 'eval')):
    return 'eval'
  return None


class NpzSource(base.ImageSource):
  """`*.npz` files in a folder; `train*.npz` and `test*.npz`/`eval*.npz` are given splits.

  `images` is (n, h, w) or (n, h, w, c), uint8 or floats in [0, 1]; `labels` is (n,) integers.
  With `class_names`, labels index it; otherwise class ids index the sorted label values.
  """

  def __init__(self, root: str, max_pixels: int = options.MAX_PIXELS):
    """`max_pixels`: the ImagePolicy's limit; larger images fail here, before any is read."""
    if not tf.io.gfile.isdir(root):
      raise FileNotFoundError(f'npz folder {root!r} does not exist')
    self._root = root
    self._files = [os.path.join(root, n) for n in sorted(tf.io.gfile.listdir(root))
                   if n.endswith('.npz')]
    if not self._files:
      raise FileNotFoundError(f'no .npz files in {root!r}')
    names, values = None, set()
    for path in self._files:
      members = check_archive(path, max_pixels)
      if CLASS_NAMES in members:
        file_names = [str(n) for n in read_member(path, CLASS_NAMES)]
        if names is not None and file_names != names:
          raise ValueError(f'{path}: class_names differ from the other files\'')
        names = file_names
      values.update(int(v) for v in read_member(path, LABELS))
    if names is not None:
      self._ids = {index: index for index in range(len(names))}
      self._class_names = names
    else:
      self._ids = {value: index for index, value in enumerate(sorted(values))}
      self._class_names = [str(value) for value in sorted(values)]

  @property
  def class_names(self) -> List[str]:
    return list(self._class_names)

  def given_splits(self) -> Optional[Dict[str, str]]:
    splits = {split_of(os.path.basename(f)) for f in self._files}
    return {'train': 'train', 'eval': 'eval'} if splits == {'train', 'eval'} else None

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    work = []
    for path in self._files:
      if split is not None and split_of(os.path.basename(path)) != split:
        continue
      members = archive_members(path)
      work += base.chunks(path, members[IMAGES].shape[0], members[LABELS].shape[0])
    return base.read_chunks(work, _read_chunk, self._ids, self._class_names, self._root)


def _to_uint8(image: np.ndarray) -> np.ndarray:
  if image.dtype == np.uint8:
    return image
  if np.issubdtype(image.dtype, np.floating):
    if not np.all(np.isfinite(image)) or image.min() < 0.0 or image.max() > 1.0:
      raise ValueError('float pixels must be finite and within [0, 1]')
    return np.round(image * 255.0).astype(np.uint8)
  if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
    return image.astype(np.uint8)
  raise ValueError(f'{image.dtype} pixels outside [0, 255]')


def _read_chunk(item, ids: Dict[int, int], names: List[str], root: str) -> Iterator:
  path, start, stop = item
  name = os.path.relpath(path, root)
  members = archive_members(path)
  images, labels = members[IMAGES].shape[0], members[LABELS].shape[0]
  if start >= min(images, labels):
    for index in range(start, stop):
      yield records.Rejected(f'{name}:{index}', records.COUNT_MISMATCH,
                             f'{images} images but {labels} labels')
    return
  pixels = read_member(path, IMAGES, start, stop)
  values = read_member(path, LABELS, start, stop)
  for offset, (image, value) in enumerate(zip(pixels, values)):
    key = f'{name}:{start + offset}'
    class_id = ids.get(int(value))
    if class_id is None:
      yield records.Rejected(key, records.LABEL_OUT_OF_RANGE,
                             f'label {int(value)} is not a class id 0..{len(names) - 1}')
      continue
    try:
      image = _to_uint8(image)
    except ValueError as error:
      yield records.Rejected(key, images_lib.UNSUPPORTED_MODE, str(error))
      continue
    yield records.RawImage(key, class_id, names[class_id], image)
