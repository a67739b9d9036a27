"""A train/eval split stratified by class: each class divided in the ratio of the hash buckets.

TFX's hash partition puts each example in a split by a hash of its key alone, so on small data
the classes come out of proportion (27 faces and 13 non-faces in an eval split of 40). Here each
class's examples are ranked by the same kind of stable hash of their `source` key, and the ranks
are cut in the ratio of the buckets: a class of 50 images in 4:1 buckets gives exactly 40 and 10.
An image's split still depends only on its key and on the other keys of its class, never on the
runner, the workers or the order of the records. Memory: one 64-bit hash per image of a class,
gathered per class (8 MB for a million images), never the images themselves.
"""

import bisect
import hashlib
from typing import Dict, List, Sequence

import apache_beam as beam
import tensorflow as tf

from ganpipe.models import features

# Above every 64-bit hash: the cut of a split that takes a class's last image.
_END = 2**64


def split_key(source: bytes) -> int:
  """A stable 64-bit hash of an example's key (sha256, as TFX's own partition hashes)."""
  return int.from_bytes(hashlib.sha256(source).digest()[:8], 'big')


def cuts(keys: Sequence[int], buckets: Sequence[int]) -> List[int]:
  """Where one class's sorted keys are cut into the splits: one cut between each two splits.

  Args:
    keys: the hash keys of a class's examples.
    buckets: each split's hash buckets, in split order; the ratio is what counts.

  Returns:
    Cuts c_1 <= ... <= c_{m-1}: split j holds the keys in [c_j, c_{j+1}). Split j gets
    round(n * b_1..j / total) - round(n * b_1..j-1 / total) of the n keys.
  """
  ordered = sorted(keys)
  total, running, result = sum(buckets), 0, []
  for bucket in buckets[:-1]:
    running += bucket
    rank = (2 * len(ordered) * running + total) // (2 * total)  # round half up, in integers
    result.append(ordered[rank] if rank < len(ordered) else _END)
  return result


def assign(key: int, class_cuts: Sequence[int]) -> int:
  """The split index of a key, given its class's cuts."""
  return bisect.bisect_right(class_cuts, key)


def _label_and_key(example: tf.train.Example):
  feature = example.features.feature
  return (int(feature[features.LABEL_KEY].int64_list.value[0]),
          split_key(feature[features.SOURCE_KEY].bytes_list.value[0]))


class _CutsFn(beam.CombineFn):
  """One class's keys -> its cuts."""

  def __init__(self, buckets: Sequence[int]):
    super().__init__()
    self._buckets = list(buckets)

  def create_accumulator(self):
    return []

  def add_input(self, accumulator, key):
    accumulator.append(key)
    return accumulator

  def merge_accumulators(self, accumulators):
    merged = []
    for accumulator in accumulators:
      merged.extend(accumulator)
    return merged

  def extract_output(self, accumulator):
    return cuts(accumulator, self._buckets)


def _partition(example: tf.train.Example, num_partitions: int,
               cuts_by_class: Dict[int, List[int]]) -> int:
  del num_partitions  # one per split
  label, key = _label_and_key(example)
  return assign(key, cuts_by_class[label])


class StratifiedSplit(beam.PTransform):
  """tf.Examples -> one PCollection per split, each class cut in the ratio of `buckets`."""

  def __init__(self, buckets: Sequence[int]):
    super().__init__()
    self._buckets = list(buckets)

  # No return annotation: Beam takes one as an output type hint, and warns at every run that a
  # list of PCollections is not one it can use (apache_beam/typehints/decorators.py).
  def expand(self, examples: beam.PCollection):
    """The split PCollections, a list in the order of `buckets`."""
    cuts_by_class = (examples
                     | 'LabelAndKey' >> beam.Map(_label_and_key)
                     | 'CutsPerClass' >> beam.CombinePerKey(_CutsFn(self._buckets)))
    return list(examples | 'Partition' >> beam.Partition(
        _partition, len(self._buckets), beam.pvalue.AsDict(cuts_by_class)))
