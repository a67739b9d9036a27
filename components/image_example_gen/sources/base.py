"""The interface every image source implements."""

import abc
from typing import Dict, List, Optional

import apache_beam as beam

from components.image_example_gen import records


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

  @abc.abstractmethod
  def read(self, split: Optional[str] = None) -> beam.PTransform:
    """pipeline -> PCollection of RawImage and Rejected, for one split (None: everything)."""
