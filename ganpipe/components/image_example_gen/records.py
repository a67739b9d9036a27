"""What sources emit, and the Beam step that turns it into tf.Examples or reasoned rejections."""

import dataclasses
import json
from typing import Iterator, Union

import apache_beam as beam
import numpy as np

from ganpipe.components.image_example_gen import images

REJECTED = 'rejected'
EXAMPLES = 'examples'

# Rejection reasons beyond the image ones in images.py.
COUNT_MISMATCH = 'count_mismatch'        # IDX / npz image and label counts disagree
SCHEMA_MISMATCH = 'schema_mismatch'      # a TFRecord example that does not follow the schema
UNREADABLE = 'unreadable'                # a file that cannot be read at all
LABEL_OUT_OF_RANGE = 'label_out_of_range'
# Warnings: reported, but not records and not counted against the bad-record limit.
EMPTY_CLASS_FOLDER = 'empty_class_folder'
NOT_IN_CLASS_FOLDER = 'not_in_class_folder'
REPEATED_FOLDER = 'repeated_folder'   # a symlink back to a folder already read (a loop)


@dataclasses.dataclass(frozen=True)
class RawImage:
  """One labelled image before normalisation.

  Attributes:
    source: the stable key: a relative path or `<file>:<index>`.
    label: the class id.
    label_name: the class name.
    data: encoded image bytes, or decoded uint8 pixels.
  """
  source: str
  label: int
  label_name: str
  data: Union[bytes, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Rejected:
  """A record that could not be used, and why."""
  source: str
  reason: str
  detail: str

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)


Record = Union[RawImage, Rejected]


class ToExamples(beam.DoFn):
  """RawImage -> tf.Example (main output), or -> Rejected on the `rejected` output."""

  def __init__(self, policy: images.ImagePolicy):
    super().__init__()
    self._policy = policy

  def process(self, record: Record) -> Iterator:
    if isinstance(record, Rejected):
      yield beam.pvalue.TaggedOutput(REJECTED, record)
      return
    try:
      if isinstance(record.data, np.ndarray):
        pixels = images.normalize_pixels(record.data, self._policy)
      else:
        pixels = images.normalize_image(record.data, self._policy)
    except images.ImageError as error:
      yield beam.pvalue.TaggedOutput(REJECTED, Rejected(record.source, error.reason,
                                                        error.detail))
      return
    yield images.make_example(pixels, record.label, record.label_name, record.source,
                              images.original_size(record.data))



class _Serialize(beam.DoFn):
  """tf.Example -> its bytes, counted as TFX's `MaybeSerialize` counts them (`num_instances`)."""

  def __init__(self, metrics_namespace: str):
    super().__init__()
    self._namespace = metrics_namespace
    self._count = None

  def setup(self):
    self._count = beam.metrics.Metrics.counter(self._namespace, 'num_instances')

  def process(self, example) -> Iterator[bytes]:
    self._count.inc(1)
    yield example.SerializeToString()


class WriteExamples(beam.PTransform):
  """Writes one split as `tfx/components/example_gen/write_split.py`'s WriteSplit does.

  Serialised, shuffled, and written as gzipped TFRecord files `<prefix>-SSSSS-of-NNNNN.gz`.
  This module imports no TFX module, so a Beam worker that loads this transform does not import
  `tfx.components` (see executor.py).
  """

  def __init__(self, prefix: str, metrics_namespace: str):
    super().__init__()
    self._prefix = prefix
    self._namespace = metrics_namespace

  def expand(self, examples: beam.PCollection):
    return (examples
            | 'Serialize' >> beam.ParDo(_Serialize(self._namespace))
            | 'Shuffle' >> beam.Reshuffle()
            | 'Write' >> beam.io.WriteToTFRecord(self._prefix, file_name_suffix='.gz'))
