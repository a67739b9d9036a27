"""Numbered versions under a root, and the temporary folders publishers assemble them in.

Both publishers (the ServingPusher and the HubPublisher) write a version into a hidden temporary
folder beside the versions and rename it into place. A publisher that crashed leaves its folder,
and the next one deletes it; but two pipeline runs can publish the same model at once
(overlapping Kubeflow runs), and one must not delete the other's folder while it is still being
written. The folder's name carries the time it was made, and only folders older than
STALE_AFTER_SECONDS count as left behind.
"""

import os
import re
import time
import uuid
from typing import List, Optional

import tensorflow as tf

# Longer than any copy of a model takes, even to an object store.
STALE_AFTER_SECONDS = 6 * 3600


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
