"""A module's files: the SavedModel's own, copied and archived with nothing else beside them."""

import os
import tarfile

import tensorflow as tf

# The files a SavedModel is made of (tensorflow/python/saved_model/constants.py; fingerprint.pb
# since TF 2.12, keras_metadata.pb from Keras, tfhub_module.pb in TF1 Hub modules), which are
# also what tfhub.dev's validator admits in an archive. Module folders and archives hold no more.
_SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt', 'fingerprint.pb', 'keras_metadata.pb',
                      'tfhub_module.pb')
_SAVED_MODEL_FOLDERS = ('assets', 'assets.extra')


def is_saved_model_file(relative_path: str) -> bool:
  """Whether a file, by its path in a SavedModel folder, is one of the SavedModel's own."""
  parts = relative_path.replace(os.sep, '/').split('/')
  if any(not part or part.startswith('.') for part in parts):
    return False
  if len(parts) == 1:
    return parts[0] in _SAVED_MODEL_FILES
  if parts[0] in _SAVED_MODEL_FOLDERS:
    return True
  return len(parts) == 2 and parts[0] == 'variables' and parts[1].startswith('variables.')


def copy_saved_model(source: str, destination: str) -> None:
  """Copies the SavedModel's own files, and its assets/ and variables/ folders, nothing else.

  Whatever else a trainer left in its export folder is not part of the module: tfhub.dev's
  validator refuses an archive holding it ("File cannot be used by SavedModel").
  """
  source = source.rstrip('/')
  tf.io.gfile.makedirs(destination)
  for directory, _, files in tf.io.gfile.walk(source):
    relative = directory[len(source):].strip('/')
    if relative in ('assets', 'variables'):  # kept even when empty, as tf.saved_model.save does
      tf.io.gfile.makedirs(os.path.join(destination, relative))
    for name in files:
      path = f'{relative}/{name}' if relative else name
      if is_saved_model_file(path):
        target = os.path.join(destination, path)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(os.path.join(directory, name), target)


def write_archive(module_dir: str, archive_path: str) -> None:
  """A gzipped tar of the SavedModel's own files, at the archive's root as tfhub.dev wants.

  Each folder gets its own entry ahead of its files: hub.load unpacks an archive entry by entry
  and makes a folder only for a folder entry (tensorflow_hub/file_utils.py,
  extract_tarfile_to_destination), so a file whose folder has none fails to unpack.
  """
  with tarfile.open(archive_path, 'w:gz') as archive:
    for directory, subdirectories, files in os.walk(module_dir):
      subdirectories.sort()
      relative = os.path.relpath(directory, module_dir)
      prefix = '' if relative == '.' else f'{relative}/'
      if prefix and not _is_saved_model_folder(relative):
        subdirectories.clear()
        continue
      if prefix:
        archive.add(directory, arcname=relative, recursive=False)
      for name in sorted(files):
        if is_saved_model_file(prefix + name):
          archive.add(os.path.join(directory, name), arcname=prefix + name)


def _is_saved_model_folder(relative_path: str) -> bool:
  parts = relative_path.replace(os.sep, '/').split('/')
  return (not any(part.startswith('.') for part in parts) and
          (parts[0] in _SAVED_MODEL_FOLDERS or parts == ['variables']))
