"""Numbered versions under a root, and the temporary folders publishers assemble them in.

Both publishers (the ServingPusher and the HubPublisher) write a version into a hidden temporary
folder beside the versions and rename it into place. A publisher that crashed leaves its folder,
and the next one deletes it; but two pipeline runs can publish the same model at once
(overlapping Kubeflow runs), and one must not delete the other's folder while it is still being
written. The folder's name carries the time it was made, and only folders older than
STALE_AFTER_SECONDS count as left behind.
"""

import hashlib
import os
import re
import time
import uuid
from typing import List, Optional, Tuple

import tensorflow as tf

# Longer than any copy of a model takes, even to an object store.
STALE_AFTER_SECONDS = 6 * 3600
# What a published version holds beside the model: TF Serving's warmup requests (the infra
# validator writes them from the eval images of the run) and the README.md that TF Hub modules
# published before their documentation moved beside the version folder held. Neither changes
# what the model computes.
NOT_THE_MODEL = ('assets.extra', 'README.md')
_CHUNK = 1 << 20


def versions(root: str, file_suffix: Optional[str] = None) -> List[int]:
  """The numeric versions under `root`, ascending: folders `N`, and files `N<file_suffix>`."""
  if not tf.io.gfile.isdir(root):
    return []
  pattern = r'(\d+)/?' if file_suffix is None else r'(\d+)(?:/|%s)?' % re.escape(file_suffix)
  found = set()
  for name in tf.io.gfile.listdir(root):
    match = re.fullmatch(pattern, name)
    if match:
      found.add(int(match.group(1)))
  return sorted(found)


def temporary_name(prefix: str, version: int, now: Optional[float] = None) -> str:
  """`<prefix><version>-<unix time>-<random>`: hidden and non-numeric, never taken for a version."""
  stamp = int(time.time() if now is None else now)
  return f'{prefix}{version}-{stamp}-{uuid.uuid4().hex[:8]}'


def is_stale(name: str, prefix: str, now: Optional[float] = None) -> bool:
  """Whether `name` (an entry beside the versions) is a temporary folder a crashed run left.

  A name with the prefix but not the time (an older layout) counts as left behind.
  """
  name = name.rstrip('/')
  if not name.startswith(prefix):
    return False
  match = re.fullmatch(re.escape(prefix) + r'\d+-(\d+)-[0-9a-f]+', name)
  if not match:
    return True
  return (time.time() if now is None else now) - int(match.group(1)) > STALE_AFTER_SECONDS


def remove_stale_temporaries(root: str, prefix: str, now: Optional[float] = None) -> List[str]:
  """Deletes the temporary folders under `root` that crashed publishes left; returns their paths.

  They were never visible as versions. A temporary folder of a publish still running (another
  pipeline run's) is left alone.
  """
  removed = []
  for name in tf.io.gfile.listdir(root):
    if is_stale(name, prefix, now):
      path = os.path.join(root, name.rstrip('/'))
      tf.io.gfile.rmtree(path)
      removed.append(path)
  return removed


def model_fingerprint(saved_model_dir: str) -> str:
  """A hash of a SavedModel's files and their paths, without what is `NOT_THE_MODEL`.

  Two copies of one model have the same fingerprint whoever copied them and whatever warmup
  requests or README they carry; any change to the graph or the weights changes it.
  """
  digest = hashlib.sha256()
  for directory, _, names in sorted(tf.io.gfile.walk(saved_model_dir)):
    relative = os.path.relpath(directory, saved_model_dir)
    if relative.split(os.sep)[0] in NOT_THE_MODEL:
      continue
    for name in sorted(names):
      path = os.path.join(directory, name)
      # TF's in-memory file system lists by name prefix: `1/` lists `1.tar.gz` as `.tar.gz`.
      if (relative == '.' and name in NOT_THE_MODEL) or not tf.io.gfile.exists(path):
        continue
      digest.update(os.path.normpath(os.path.join(relative, name)).encode() + b'\0')
      with tf.io.gfile.GFile(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):  # pylint: disable=cell-var-from-loop
          digest.update(chunk)
      digest.update(b'\0')
  return digest.hexdigest()


def latest_if_unchanged(saved_model_dir: str, root: str) -> Optional[Tuple[int, str]]:
  """(version, path) of the newest version under `root` when it holds this very model.

  Only the newest counts: a model equal to an older version is a change of what serves (a
  rollback), and is published again.
  """
  found = versions(root)
  if not found:
    return None
  latest = os.path.join(root, str(found[-1]))
  if not tf.io.gfile.isdir(latest):
    return None
  if model_fingerprint(latest) != model_fingerprint(saved_model_dir):
    return None
  return found[-1], latest
