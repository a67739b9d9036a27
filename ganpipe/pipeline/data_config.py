"""The data section of the configuration: the source, its spans, ingestion and drift limits."""

import dataclasses
import re
from typing import Optional, Tuple

from ganpipe.components.image_example_gen import options as ingestion
from ganpipe.models import hparams

check = hparams.check

# TFX's span and version specs in an input pattern (tfx/components/example_gen/utils.py,
# SPAN_FULL_REGEX, VERSION_FULL_REGEX, DATE_SPECS), checked here without loading TFX.
_SPAN_SPEC = re.compile(r'\{SPAN(:\d+)?\}')
_VERSION_SPEC = re.compile(r'\{VERSION(:\d+)?\}')
_DATE_SPECS = ('{YYYY}', '{MM}', '{DD}')


def check_span_pattern(pattern: str) -> None:
  """Raises ConfigError unless `pattern` is a relative path with one {SPAN} (or one each of
  {YYYY}, {MM}, {DD}) and at most one {VERSION}, as TFX's ExampleGen reads them."""
  option, fix = 'data.span_pattern', 'pass --data.span_pattern like span-{SPAN}'
  spans = len(_SPAN_SPEC.findall(pattern))
  dates = [pattern.count(spec) for spec in _DATE_SPECS]
  check(spans == 1 and not any(dates) or spans == 0 and dates == [1, 1, 1], option,
        f'{pattern!r} needs exactly one {{SPAN}} (or one each of {{YYYY}}, {{MM}}, {{DD}})', fix)
  check(len(_VERSION_SPEC.findall(pattern)) <= 1, option,
        f'{pattern!r} has more than one {{VERSION}}', fix)
  check(not pattern.startswith('/') and '://' not in pattern and '..' not in pattern.split('/'),
        option, f'{pattern!r} must be a path relative to --data.data_dir', fix)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The dataset, how its images are normalised, the split and the bad-record limit.

  Attributes:
    dataset: the source: digits, fashion-mnist (built in), folder, idx, npz or tfrecord.
    data_dir: the source folder: a class-per-folder tree, IDX pairs, .npz files or TFRecords
      (for fashion-mnist, /usr/share/datasets/fashion-mnist unless given).
    schema_path: a curated schema.pbtxt to validate against; none infers one from the train
      split.
    image_size: HEIGHT,WIDTH every image is converted to; none means the dataset's own size
      (32,32 for folders, 28,28 for idx, npz and tfrecord).
    channels: 1 (grayscale) or 3 (RGB); none means the dataset's own (3 for folders).
    on_wrong_size: what happens to an image of another size: resize, or reject.
    formats: the accepted encodings of image files.
    max_image_pixels: larger input images are rejected (too_large) from their header, without
      being decoded.
    max_bad_fraction: ingestion fails when more than this fraction of the records is rejected.
    train_buckets: hash buckets of train images, when the source has no splits of its own.
    eval_buckets: hash buckets of eval images, likewise.
    span_pattern: the span folder (or file) under data_dir, with TFX's {SPAN} spec and
      optionally {VERSION}, e.g. span-{SPAN}; the newest span is ingested. None reads all of
      data_dir as span 0.
    train_spans: the trainers train on the newest this many spans (TFX's rolling_range).
    allow_drift: train even when the new span has drifted from the span that trained the latest
      blessed model; the run records that it did.
    max_label_drift: the L-infinity distance between the label distributions of the new span
      and the baseline span above which the run stops before training.
    max_feature_drift: the Jensen-Shannon divergence of the image size and mean pixel
      intensity distributions above which the run stops before training.
  """
  dataset: str = ingestion.DIGITS
  data_dir: Optional[str] = None
  schema_path: Optional[str] = None
  image_size: Optional[Tuple[int, int]] = None
  channels: Optional[int] = None
  on_wrong_size: str = ingestion.RESIZE
  formats: Tuple[str, ...] = ingestion.DEFAULT_FORMATS
  max_image_pixels: int = ingestion.MAX_PIXELS
  max_bad_fraction: float = 0.01
  train_buckets: int = 4
  eval_buckets: int = 1
  span_pattern: Optional[str] = None
  train_spans: int = 1
  allow_drift: bool = False
  max_label_drift: float = 0.2
  max_feature_drift: float = 0.2

  def __post_init__(self):
    check(self.dataset in ingestion.SOURCES, 'data.dataset', f'unknown dataset {self.dataset!r}',
          f'pass --data.dataset with one of {", ".join(ingestion.SOURCES)}')
    if self.dataset in ingestion.NEEDS_INPUT_BASE:
      check(bool(self.data_dir), 'data.data_dir',
            f'the {self.dataset} dataset needs a data folder',
            f'pass --data.data_dir with the folder holding the {self.dataset} data')
    if self.image_size is not None:
      check(len(self.image_size) == 2 and all(
          isinstance(v, int) and v > 0 for v in self.image_size), 'data.image_size',
            f'must be two positive integers, got {self.image_size!r}',
            'pass --data.image_size HEIGHT,WIDTH')
    if self.channels is not None:
      check(self.channels in (1, 3), 'data.channels', f'must be 1 or 3, got {self.channels!r}',
            'pass --data.channels 1 (grayscale) or 3 (RGB)')
    check(self.on_wrong_size in ingestion.WRONG_SIZE_POLICIES, 'data.on_wrong_size',
          f'unknown policy {self.on_wrong_size!r}',
          f'pass --data.on_wrong_size with one of {", ".join(ingestion.WRONG_SIZE_POLICIES)}')
    check(len(self.formats) >= 1 and all(f in ingestion.FORMAT_NAMES for f in self.formats),
          'data.formats', f'unknown image formats in {self.formats!r}',
          f'pass --data.formats with some of {", ".join(ingestion.FORMAT_NAMES)}')
    height, width, _ = self.image_shape
    check(isinstance(self.max_image_pixels, int) and self.max_image_pixels >= height * width,
          'data.max_image_pixels',
          f'{self.max_image_pixels!r} is less than the {height}x{width} output images',
          f'pass --data.max_image_pixels of at least {height * width}')
    hparams.check_fraction(self.max_bad_fraction, 'data.max_bad_fraction')
    hparams.check_positive(self.train_buckets, 'data.train_buckets')
    hparams.check_positive(self.eval_buckets, 'data.eval_buckets')
    if self.span_pattern is not None:
      check(self.dataset in ingestion.NEEDS_INPUT_BASE, 'data.span_pattern',
            f'the {self.dataset} dataset has no spans', 'omit --data.span_pattern')
      check_span_pattern(self.span_pattern)
    hparams.check_positive(self.train_spans, 'data.train_spans')
    check(self.train_spans == 1 or self.span_pattern is not None, 'data.train_spans',
          f'{self.train_spans} spans need a data folder in spans',
          'pass --data.span_pattern span-{SPAN}, or --data.train_spans 1')
    hparams.check_fraction(self.max_label_drift, 'data.max_label_drift')
    hparams.check_fraction(self.max_feature_drift, 'data.max_feature_drift')

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    """(height, width, channels) of every image after ingestion."""
    native = ingestion.NATIVE_SHAPES[self.dataset] or ingestion.DEFAULT_SHAPES[self.dataset]
    height, width = self.image_size or native[:2]
    return (height, width, self.channels or native[2])
