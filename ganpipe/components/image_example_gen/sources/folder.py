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


def is_image_name(name: str, extensions=options.IMAGE_EXTENSIONS) -> bool:
  """Whether a folder source reads the file `name`, by its extension, as Keras does."""
  return name.lower().endswith(tuple(extensions))


class FolderSource(base.ImageSource):
  """`root/<class>/**/<image>`; `root/train/<class>/...` and `root/test/<class>/...` are splits.

  Class ids are the sorted names of the class folders that hold an image file, over all splits:
  a class folder without one is left out of the class map (an output the classifier could never
  learn) and named in the warnings. Files are read by their extension, as Keras' reads them
  (options.IMAGE_EXTENSIONS): others are skipped and counted apart (`skipped_files`), and every
  file read that is not a usable image is rejected with a reason, never skipped.
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
    self._warnings: List[records.Rejected] = []
    self._skipped: List[str] = []
    folders: Dict[str, List[str]] = {}  # class name -> its folders, one per split
    for folder in bases:
      for name in files_in(folder):
        self._skip_or_warn(os.path.join(folder, name), records.NOT_IN_CLASS_FOLDER,
                           'an image outside any class folder is not read')
      for name in subdirs(folder):
        folders.setdefault(name, []).append(os.path.join(folder, name))
    if not folders:
      raise FileNotFoundError(f'image folder {root!r} has no class folders; expected '
                              'root/<class_name>/<images>')
    self._class_names = []
    for name, class_folders in sorted(folders.items()):
      if self._list_class(class_folders):
        self._class_names.append(name)
        continue
      for folder in class_folders:
        self._warnings.append(records.Rejected(
            self._relative(folder), records.EMPTY_CLASS_FOLDER,
            f'class {name!r} has no image files; left out of the class map'))
    if not self._class_names:
      raise FileNotFoundError(
          f'image folder {root!r} holds no image files: none of its class folders '
          f'({", ".join(sorted(folders)[:5])}{", ..." if len(folders) > 5 else ""}) has a file '
          f'named {", ".join("*" + e for e in options.KERAS_IMAGE_EXTENSIONS)} or another image '
          'extension')

  def _relative(self, path: str) -> str:
    return os.path.relpath(path, self._root)

  def _skip_or_warn(self, path: str, reason: str, detail: str) -> bool:
    """Counts a file that is not named as an image as skipped; else warns. True if an image."""
    if not is_image_name(os.path.basename(path)):
      self._skipped.append(self._relative(path))
      return False
    self._warnings.append(records.Rejected(self._relative(path), reason, detail))
    return True

  def _list_class(self, class_folders: List[str]) -> bool:
    """Walks a class's folders: counts the files skipped, warns of loops. True if any image."""
    found = False
    for class_folder in class_folders:
      repeats: List[str] = []
      for directory, names in files.walk(class_folder, repeats):
        for name in names:
          if is_image_name(name):
            found = True
          else:
            self._skipped.append(self._relative(os.path.join(directory, name)))
      for repeat in repeats:
        self._warnings.append(records.Rejected(
            self._relative(repeat), records.REPEATED_FOLDER,
            'a link back to a folder this class already reads; not read again'))
    return found

  @property
  def class_names(self) -> List[str]:
    return list(self._class_names)

  def given_splits(self) -> Optional[Dict[str, str]]:
    return dict(self._split_dirs) if self._split_dirs else None

  def warnings(self) -> List[records.Rejected]:
    return list(self._warnings)

  def skipped_files(self) -> List[str]:
    return list(self._skipped)

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
      if is_image_name(filename):  # the others were counted as skipped when the source opened
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
