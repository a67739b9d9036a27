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
