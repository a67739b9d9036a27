"""Temporary folders beside published versions, and which of them a crashed run left behind.

A publisher assembles a version in a hidden temporary folder and renames it into place. A
publisher that crashed leaves its folder, and the next one deletes it; but two pipeline runs
can publish the same model at once (overlapping Kubeflow runs), and one must not delete the
other's folder while it is still being written. The folder's name carries the time it was
made, and only folders older than STALE_AFTER_SECONDS count as left behind.
"""

import re
import time
import uuid
from typing import Optional

# Longer than any copy of a model takes, even to an object store.
STALE_AFTER_SECONDS = 6 * 3600


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
