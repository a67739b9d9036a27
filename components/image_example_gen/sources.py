"""Image sources for ImageExampleGen: each lists its classes and reads itself as a Beam PCollection."""

import abc
import dataclasses
import functools
import json
import os
from typing import Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from components.image_example_gen import images

BUILTIN_DIGITS = 'digits'
FOLDER = 'folder'
SOURCES = (BUILTIN_DIGITS, FOLDER)
# Folder names that mark a tree laid out as root/<split>/<class>/...; `test` feeds `eval`.
GIVEN_SPLIT_DIRS = {'train': 'train', 'eval': 'test'}


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  """How every image is normalised on the way in."""
  shape: Tuple[int, int, int]

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'ImageOptions':
    values = json.loads(text)
    return cls(shape=tuple(values['shape']))


class ImageSource(abc.ABC):
  """A dataset of labelled images."""

  @property
  @abc.abstractmethod
  def class_names(self) -> List[str]:
    """Class names; a class id is its index here."""

  def given_splits(self) -> Optional[Dict[str, str]]:
    """Output split name -> the source's own split, or None when the source has no splits."""
    return None

  @abc.abstractmethod
  def read(self, split: Optional[str] = None) -> beam.PTransform:
    """A PTransform from a pipeline to the tf.Examples of one split (None: all)."""


class DigitsSource(ImageSource):
  """scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package)."""

  def __init__(self, options: ImageOptions):
    self._options = options

  @property
  def class_names(self) -> List[str]:
    return [str(digit) for digit in range(10)]

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    del split  # the digits have no splits of their own
    options = self._options
    names = self.class_names

    @beam.ptransform_fn
    def _read(pipeline):
      return (pipeline
              | 'DigitIndices' >> beam.Create(range(_num_digits()))
              | 'DigitToExample' >> beam.Map(_digit_example, options.shape, names))

    return _read()  # pylint: disable=no-value-for-parameter


@functools.lru_cache(maxsize=1)
def _load_digits() -> Tuple[np.ndarray, np.ndarray]:
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  digits = datasets.load_digits()
  # The digits are 0..16 intensities; spread them over 8 bits.
  pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
  return pixels, digits.target.astype(np.int64)


def _num_digits() -> int:
  return len(_load_digits()[1])


def _digit_example(index: int, shape: Tuple[int, int, int],
                   names: List[str]) -> tf.train.Example:
  pixels, labels = _load_digits()
  normalized = images.normalize_image(images.encode_png(pixels[index]), shape)
  label = int(labels[index])
  return images.make_example(normalized, label, names[label],
                             f'digits:{index}')


class FolderSource(ImageSource):
  """A class-per-folder tree, `root/<class>/**/<image>` (Keras image_dataset_from_directory).

  `root/train/<class>/...` and `root/test/<class>/...` are kept as the train and eval splits.
  Class ids are the class names in sorted order, over all splits.
  """

  def __init__(self, root: str, options: ImageOptions):
    self._root = root.rstrip('/')
    self._options = options
    if not tf.io.gfile.isdir(self._root):
      raise FileNotFoundError(f'image folder {root!r} does not exist')
    top = _subdirs(self._root)
    self._split_dirs = None
    if top and set(top) == set(GIVEN_SPLIT_DIRS.values()):
      self._split_dirs = dict(GIVEN_SPLIT_DIRS)
      names = set()
      for split_dir in self._split_dirs.values():
        names.update(_subdirs(os.path.join(self._root, split_dir)))
      self._class_names = sorted(names)
    else:
      self._class_names = sorted(top)
    if not self._class_names:
      raise FileNotFoundError(f'image folder {root!r} has no class folders; expected '
                              'root/<class_name>/<images>')

  @property
  def class_names(self) -> List[str]:
    return list(self._class_names)

  def given_splits(self) -> Optional[Dict[str, str]]:
    return dict(self._split_dirs) if self._split_dirs else None

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    base = os.path.join(self._root, split) if split else self._root
    root = self._root
    options = self._options
    classes = [(label, name, os.path.join(base, name))
               for label, name in enumerate(self._class_names)]

    @beam.ptransform_fn
    def _read(pipeline):
      return (pipeline
              | 'Classes' >> beam.Create(classes)
              | 'ListFiles' >> beam.FlatMap(_list_class_files)
              # Spread the files over workers: one class folder may hold most of them.
              | 'Distribute' >> beam.Reshuffle()
              | 'FileToExample' >> beam.Map(_file_example, root, options.shape))

    return _read()  # pylint: disable=no-value-for-parameter


def _subdirs(path: str) -> List[str]:
  return sorted(entry.rstrip('/') for entry in tf.io.gfile.listdir(path)
                if tf.io.gfile.isdir(os.path.join(path, entry)))


def _list_class_files(entry: Tuple[int, str, str]) -> Iterator[Tuple[str, int, str]]:
  label, name, class_dir = entry
  if not tf.io.gfile.isdir(class_dir):
    return  # a class present in one given split only
  for directory, _, files in tf.io.gfile.walk(class_dir):
    for filename in sorted(files):
      yield os.path.join(directory, filename), label, name


def _file_example(entry: Tuple[str, int, str], root: str,
                  shape: Tuple[int, int, int]) -> tf.train.Example:
  path, label, name = entry
  relative = os.path.relpath(path, root)
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    pixels = images.normalize_image(data, shape)
  except images.ImageError as error:
    raise images.ImageError(error.reason, f'{relative}: {error.detail}') from None
  return images.make_example(pixels, label, name, relative)


def open_source(source: str, input_base: str, options: ImageOptions) -> ImageSource:
  """Returns the ImageSource named `source` reading from `input_base`."""
  if source == BUILTIN_DIGITS:
    return DigitsSource(options)
  if source == FOLDER:
    return FolderSource(input_base, options)
  raise ValueError(f'unknown image source {source!r}; expected one of {", ".join(SOURCES)}')
