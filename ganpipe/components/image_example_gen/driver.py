"""ImageExampleGen's driver: fingerprints the image source so that caching sees any change."""

import hashlib
import json
import os
from typing import Iterable, Optional, Tuple

import tensorflow as tf
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import sources
from ganpipe.components.image_example_gen.sources import builtin
from ganpipe.components.image_example_gen.sources import files


def source_fingerprint(source: str, input_base: str) -> str:
  """A fingerprint of everything a source reads.

  Folders are walked recursively (TFX's own file fingerprint sees only one glob level), so
  adding, removing or rewriting any file in any sub-folder changes the fingerprint.
  """
  digest = hashlib.sha256()
  if source in sources.BUILT_IN:
    import sklearn  # pylint: disable=import-outside-toplevel
    digest.update(f'{source}:scikit-learn=={sklearn.__version__}'.encode())
    return f'builtin:{digest.hexdigest()}'
  if source == options.FASHION_MNIST and not input_base:
    input_base = builtin.FASHION_MNIST_DIR
  count = 0
  for directory, names in sorted(files.walk(input_base)):
    for name in names:
      path = os.path.join(directory, name)
      try:
        stat = tf.io.gfile.stat(path)
        entry = (os.path.relpath(path, input_base), stat.length, stat.mtime_nsec)
      except tf.errors.OpError:  # a dangling link: the executor rejects it as unreadable
        entry = (os.path.relpath(path, input_base), None, None)
      digest.update(json.dumps(entry).encode())
      count += 1
  return f'files:{count}:{digest.hexdigest()}'


class _SourceInputProcessor(input_processor.InputProcessor):
  """Span 0, no version; the fingerprint covers the whole source."""

  def __init__(self, source: str, input_base: str,
               splits: Iterable[example_gen_pb2.Input.Split],
               range_config: Optional[range_config_pb2.RangeConfig] = None):
    super().__init__(splits=splits, range_config=range_config)
    self._source = source
    self._input_base = input_base

  def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
    return 0, None

  def get_pattern_for_span_version(self, pattern, span, version):
    return pattern

  def get_latest_span(self) -> int:
    return 0

  def get_input_fingerprint(self, span, version) -> Optional[str]:
    return source_fingerprint(self._source, self._input_base)


class ImageExampleGenDriver(driver.Driver):
  """Resolves span and fingerprint for ImageExampleGen under the local and Beam runners."""

  def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
    self._source = exec_properties['source']
    return super().resolve_exec_properties(exec_properties, pipeline_info, component_info)

  def get_input_processor(self, splits, range_config=None, input_base_uri=None):
    return _SourceInputProcessor(self._source, input_base_uri, splits, range_config)
