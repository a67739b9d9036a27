"""A class-stratified, seeded sample of real images from a whole split, in bounded memory.

ImageExampleGen writes a folder source class by class, so the first N records of a split may
cover only a few classes; a reference drawn from them is not the data the generator learnt. The
sample here takes each class in proportion to its share of the split. Within a class, the images
kept are those whose seeded hash of the `source` key is smallest (bottom-k sampling): a uniform
sample without replacement that does not depend on the order of the records in the files, which
changes with the number of Beam workers that wrote them. Two streaming passes keep memory to the
class counts and the sample itself: one counts the classes, one keeps each class's k best.
"""

import glob
import hashlib
import heapq
import os
from typing import Dict, Iterator, List, Tuple

import numpy as np
import tensorflow as tf

from ganpipe.models import features

# Records parsed per batch; only the features asked for are parsed.
_BATCH = 1024


def split_files(examples_uri: str, split: str) -> List[str]:
  """The TFRecord files of one split of an Examples artifact.

  Raises:
    FileNotFoundError: the split has no files.
  """
  files = sorted(glob.glob(os.path.join(examples_uri, f'Split-{split}', '*')))
  if not files:
    raise FileNotFoundError(f'no examples in {examples_uri}/Split-{split}')
  return files


def _parsed(files: List[str], keys: Tuple[str, ...]) -> Iterator[Dict[str, np.ndarray]]:
  spec = {features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
          features.SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=''),
          features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
  spec = {key: spec[key] for key in keys}
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(_BATCH)
  for batch in dataset.map(lambda records: tf.io.parse_example(records, spec)):
    yield {key: value.numpy() for key, value in batch.items()}


def class_counts(files: List[str]) -> Dict[int, int]:
  """Images per class id in `files`."""
  counts: Dict[int, int] = {}
  for batch in _parsed(files, (features.LABEL_KEY,)):
    labels, numbers = np.unique(batch[features.LABEL_KEY], return_counts=True)
    for label, number in zip(labels.tolist(), numbers.tolist()):
      counts[label] = counts.get(label, 0) + number
  return counts


def quotas(counts: Dict[int, int], total: int) -> Dict[int, int]:
  """`total` images shared among the classes in proportion to `counts` (largest remainder).

  Raises:
    ValueError: `total` is more than the images there are.
  """
  available = sum(counts.values())
  if total > available:
    raise ValueError(f'a sample of {total} images asked of {available}')
  if not available:
    return {}
  exact = {label: total * count / available for label, count in counts.items()}
  shares = {label: int(value) for label, value in exact.items()}
  # The largest fractions get the images left; ties by class id, so the shares are reproducible.
  left = total - sum(shares.values())
  for label in sorted(exact, key=lambda l: (shares[l] - exact[l], l))[:left]:
    shares[label] += 1
  return shares


def _priority(seed: int, source: bytes) -> int:
  digest = hashlib.blake2b(source, digest_size=8, key=str(seed).encode()).digest()
  return int.from_bytes(digest, 'big')


def sample(files: List[str], shares: Dict[int, int], seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """`shares[label]` images of each class, chosen by their seeded hash; floats in [0, 1].

  Returns:
    (pixels [n, h, w, c] float32, labels [n] int64), in the order of their hashes (classes
    interleaved).
  """
  kept: Dict[int, List[Tuple[int, bytes, bytes]]] = {label: [] for label in shares}
  for batch in _parsed(files, (features.LABEL_KEY, features.SOURCE_KEY, features.IMAGE_KEY)):
    for label, source, png in zip(batch[features.LABEL_KEY].tolist(),
                                  batch[features.SOURCE_KEY], batch[features.IMAGE_KEY]):
      heap, wanted = kept.get(label), shares.get(label, 0)
      if not wanted:
        continue
      # A max-heap by priority (negated) of the `wanted` smallest seen so far.
      entry = (-_priority(seed, source or png), source, png)
      if len(heap) < wanted:
        heapq.heappush(heap, entry)
      elif entry > heap[0]:
        heapq.heapreplace(heap, entry)
  chosen = sorted((-negated, label, png) for label, heap in kept.items()
                  for negated, _, png in heap)
  if not chosen:
    raise ValueError('the sample is empty')
  pixels = np.stack([tf.io.decode_png(png).numpy() for _, _, png in chosen])
  labels = np.array([label for _, label, _ in chosen], np.int64)
  return pixels.astype(np.float32) / 255.0, labels
