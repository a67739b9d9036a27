"""The interface every image source implements."""

import abc
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam

from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import records


class ImageSource(abc.ABC):
  """A dataset of labelled images that reads itself as a Beam PCollection of records."""

  @property
  @abc.abstractmethod
  def class_names(self) -> Optional[List[str]]:
    """Class names, a class id being an index here; None when only the data can tell."""

  def given_splits(self) -> Optional[Dict[str, str]]:
    """Output split (`train`, `eval`) -> the source's own split, or None: hash-split it all."""
    return None

  def warnings(self) -> List[records.Rejected]:
    """Problems found while listing the source that are not records (e.g. empty classes)."""
    return []

  def skipped_files(self) -> List[str]:
    """Files the source does not read, as not named as images (`notes.txt`, `.DS_Store`)."""
    return []

  @abc.abstractmethod
  def read(self, split: Optional[str] = None) -> beam.PTransform:
    """pipeline -> PCollection of RawImage and Rejected, for one split (None: everything)."""


# Array files (IDX, .npy) carry a header that says how much data follows. A download cut short,
# or a header that promises billions of records, must fail when the source is opened, naming
# the file, rather than end the pipeline in a worker's reshape, exhaust its memory, or have it
# emit a rejection for every record promised.


def check_image_dims(path: str, record_dims: Sequence[int],
                     max_pixels: int = options.MAX_PIXELS) -> None:
  """Raises ValueError unless each record is a (height, width[, channels]) image of 1 to
  `max_pixels` pixels (the ImagePolicy's limit)."""
  if len(record_dims) not in (2, 3):
    raise ValueError(f'{path}: images of {len(record_dims)} dimensions {list(record_dims)}; '
                     'images have 2 or 3 (height, width[, channels])')
  if min(record_dims) == 0 or record_dims[0] * record_dims[1] > max_pixels:
    raise ValueError(f'{path}: images of {"x".join(map(str, record_dims))} are not images '
                     f'this pipeline reads (1 to {max_pixels} pixels; the limit is '
                     '--data.max_image_pixels)')


def check_length(path: str, count: int, record_bytes: int, found: int) -> None:
  """Raises ValueError unless `found` data bytes are exactly `count` records of `record_bytes`."""
  expected = count * record_bytes
  if found == expected:
    return
  whole, extra = divmod(found, record_bytes) if record_bytes else (0, found)
  state = 'truncated' if found < expected else 'longer than its header says'
  raise ValueError(
      f'{path} is {state}: the header promises {count} records of {record_bytes} bytes '
      f'({expected} bytes), and {found} bytes follow it '
      f'({whole} whole records{f" and {extra} bytes" if extra else ""}). '
      'Download or write the file again.')


# Array files are read in chunks of this many records, each chunk a unit of work for Beam.
CHUNK = 10_000


def chunks(item: Any, images: int, labels: int, chunk: int = CHUNK) -> List[Tuple[Any, int, int]]:
  """(item, start, stop) chunks over an images/labels pair of record counts.

  The records both hold come in chunks of `chunk`. When the counts differ, the records only one
  holds, [min, max), are one more chunk: the chunk reader rejects each of them (COUNT_MISMATCH).
  """
  usable = min(images, labels)
  work = [(item, start, min(start + chunk, usable)) for start in range(0, usable, chunk)]
  if images != labels:
    work.append((item, usable, max(images, labels)))
  return work


def read_chunks(work: Sequence[Tuple[Any, int, int]], read_chunk: Callable[..., Iterator],
                *args) -> beam.PTransform:
  """pipeline -> the records `read_chunk(chunk, *args)` yields for each chunk, over the workers."""

  @beam.ptransform_fn
  def _read(pipeline):
    return (pipeline
            | 'Chunks' >> beam.Create(list(work))
            | 'Distribute' >> beam.Reshuffle()
            | 'ReadChunk' >> beam.FlatMap(read_chunk, *args))

  return _read()  # pylint: disable=no-value-for-parameter
