"""Walking and reading the files of a folder tree, on any file system TensorFlow reads."""

import os
import stat
from typing import Iterator, List, Optional, Tuple

import tensorflow as tf

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import records


def _is_local(path: str) -> bool:
  return '://' not in path


def walk(top: str, repeats: Optional[List[str]] = None) -> Iterator[Tuple[str, List[str]]]:
  """Yields (folder, sorted file names) for `top` and every folder under it, in sorted order.

  A symlinked folder is followed (a class folder may live elsewhere), but not one already
  visited on this walk by another path, nor `top` itself or a folder above it: a link to an
  ancestor would otherwise repeat its files until the path grew too long. Such folders are
  appended to `repeats` when it is given.
  """
  seen = set()
  top_real = os.path.realpath(top) if _is_local(top) else top
  for folder, subdirs, names in tf.io.gfile.walk(top):
    real = os.path.realpath(folder) if _is_local(folder) else folder
    if real in seen or top_real.startswith(real.rstrip(os.sep) + os.sep):
      subdirs[:] = []  # tf.io.gfile.walk, like os.walk, does not descend into removed entries
      if repeats is not None:
        repeats.append(folder)
      continue
    seen.add(real)
    subdirs.sort()
    yield folder, sorted(names)


def check_readable(path: str, max_bytes: int) -> Optional[Tuple[str, str]]:
  """None if `path` is a regular file of at most `max_bytes`; else (reason, detail).

  The reason is `unreadable` for a FIFO, socket or device, which a read could wait on forever,
  and `too_large` for a file larger than any image. Errors from a path that cannot be looked
  at (a dangling link) propagate as OSError or tf.errors.OpError.
  """
  if _is_local(path):
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
      kind = ('a FIFO' if stat.S_ISFIFO(mode) else 'a socket' if stat.S_ISSOCK(mode)
              else 'a device' if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else 'not a file')
      return records.UNREADABLE, f'{kind}, not a regular file'
  size = tf.io.gfile.stat(path).length
  if size > max_bytes:
    return images.TOO_LARGE, f'{size} bytes, more than the {max_bytes} an image may take'
  return None
