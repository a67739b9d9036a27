"""A class-per-folder image tree, as Keras' image_dataset_from_directory reads it."""

import os
from typing import Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import records
from ganpipe.components.image_example_gen.sources import base
from ganpipe.components.image_example_gen.sources import files

# Folder names that mark a tree laid out as root/<split>/<class>/...; `test` feeds `eval`.
GIVEN_SPLIT_DIRS = {'train': 'train', 'eval': 'test'}


def subdirs(path: str) -> List[str]:
  return sorted(entry.rstrip('/') for entry in tf.io.gfile.listdir(path)
                if tf.io.gfile.isdir(os.path.join(path, entry)))


def files_in(path: str) -> List[str]:
  return sorted(entry for entry in tf.io.gfile.listdir(path)
                if not tf.io.gfile.isdir(os.path.join(path, entry)))


class FolderSource(base.ImageSource):
  """`root/<class>/**/<image>`; `root/train/<class>/...` and `root/test/<class>/...` are splits.

  Class ids are the class names in sorted order, over all splits. Every file under a class folder
  is a record: one that is not an image is rejected with a reason, never skipped.
  """

  def __init__(self, root: str, max_file_bytes: int = images.max_file_bytes(options.MAX_PIXELS)):
    """`max_file_bytes`: a larger file is rejected as `too_large` without being read."""
    self._root = root.rstrip('/')
    self._max_file_bytes = max_file_bytes
    if not tf.io.gfile.isdir(self._root):
      raise FileNotFoundError(f'image folder {root!r} does not exist')
    top = subdirs(self._root)
    self._split_dirs = None
    bases = [self._root]
    if top and set(top) == set(GIVEN_SPLIT_DIRS.values()):
      self._split_dirs = dict(GIVEN_SPLIT_DIRS)
      bases = [os.path.join(self._root, d) for d in self._split_dirs.values()]
    names = set()
    for folder in bases:
      names.update(subdirs(folder))
    self._class_names = sorted(names)
    if not self._class_names:
      raise FileNotFoundError(f'image folder {root!r} has no class folders; expected '
                              'root/<class_name>/<images>')
    self._warnings = []
    for folder in bases:
      for name in files_in(folder):
        self._warnings.append(records.Rejected(
            os.path.relpath(os.path.join(folder, name), self._root),
            records.NOT_IN_CLASS_FOLDER, 'a file outside any class folder is not read'))
      for name in subdirs(folder):
        repeats: List[str] = []
        listing = [found for _, found in files.walk(os.path.join(folder, name), repeats)]
        if not any(listing):
          self._warnings.append(records.Rejected(
              os.path.relpath(os.path.join(folder, name), self._root),
              records.EMPTY_CLASS_FOLDER, f'class {name!r} has no files'))
        for repeat in repeats:
          self._warnings.append(records.Rejected(
              os.path.relpath(repeat, self._root), records.REPEATED_FOLDER,
              'a link back to a folder this class already reads; not read again'))

  @property
  def class_names(self) -> List[str]:
    return list(self._class_names)

  def given_splits(self) -> Optional[Dict[str, str]]:
    return dict(self._split_dirs) if self._split_dirs else None

  def warnings(self) -> List[records.Rejected]:
    return list(self._warnings)

  def read(self, split: Optional[str] = None) -> beam.PTransform:
    base_dir = os.path.join(self._root, split) if split else self._root
    root, max_bytes = self._root, self._max_file_bytes
    classes = [(label, name, os.path.join(base_dir, name))
               for label, name in enumerate(self._class_names)]

    @beam.ptransform_fn
    def _read(pipeline):
      return (pipeline
              | 'Classes' >> beam.Create(classes)
              | 'ListFiles' >> beam.FlatMap(_list_class_files)
              # Spread the files over workers: one class folder may hold most of them.
              | 'Distribute' >> beam.Reshuffle()
              | 'ReadFile' >> beam.Map(_read_file, root, max_bytes))

    return _read()  # pylint: disable=no-value-for-parameter


def _list_class_files(entry: Tuple[int, str, str]) -> Iterator[Tuple[str, int, str]]:
  label, name, class_dir = entry
  if not tf.io.gfile.isdir(class_dir):
    return  # a class present in one given split only
  for directory, names in files.walk(class_dir):
    for filename in names:
      yield os.path.join(directory, filename), label, name


def _read_file(entry: Tuple[str, int, str], root: str, max_bytes: int) -> records.Record:
  path, label, name = entry
  relative = os.path.relpath(path, root)
  try:
    problem = files.check_readable(path, max_bytes)
    if problem:
      return records.Rejected(relative, *problem)
    with tf.io.gfile.GFile(path, 'rb') as f:
      data = f.read()
  except (OSError, tf.errors.OpError) as error:
    return records.Rejected(relative, records.UNREADABLE, str(error))
  return records.RawImage(relative, label, name, data)
