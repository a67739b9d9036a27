"""ImageExampleGen's driver: resolves the span and fingerprints it, so that caching sees changes."""

import hashlib
import json
import os
from typing import Iterable, Optional, Tuple

import tensorflow as tf
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen import utils
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import standard_component_specs

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


class _SpanInputProcessor(input_processor.FileBasedInputProcessor):
  """TFX's own span and version resolution over `input_base/<pattern>`; newest span by default.

  The fingerprint is ours, over the resolved span's folder or file alone (walked recursively):
  a new span changes it, and so does any change inside the span ingested, but a change to an
  older span does not, so that a run with no new span is a cache hit.
  """

  def __init__(self, source: str, input_base: str,
               splits: Iterable[example_gen_pb2.Input.Split],
               range_config: Optional[range_config_pb2.RangeConfig] = None):
    super().__init__(input_base, splits, range_config)
    self._source = source
    self._patterns = [split.pattern for split in splits]

  def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
    try:
      return super().resolve_span_and_version()
    except ValueError as error:  # TFX names the split and pattern, not the folder
      raise ValueError(f'no span of {os.path.join(self._input_base_uri, self._patterns[0])} '
                       f'could be read: {error}. Fix: lay the data out as '
                       f'{self._patterns[0]} folders under --data.data_dir') from None

  def get_input_fingerprint(self, span, version) -> Optional[str]:
    pattern = self.get_pattern_for_span_version(self._patterns[0], span, version)
    return f'span:{pattern}:' + source_fingerprint(
        self._source, os.path.join(self._input_base_uri, pattern))


def set_span_properties(exec_properties, artifact) -> None:
  """Writes span and version as the Examples type's own properties too.

  TFX's driver (`update_output_artifact` in tfx/components/example_gen/driver.py) writes them
  as custom properties only, while `Artifact.span` reads the property (tfx/types/artifact.py),
  and so do the rolling-range resolver (ops_utils.filter_artifacts_by_span) and StatisticsGen,
  which copies `examples.span` to its statistics. Without this every span would read as 0.
  """
  artifact.properties[utils.SPAN_PROPERTY_NAME].int_value = exec_properties[
      utils.SPAN_PROPERTY_NAME]
  if exec_properties.get(utils.VERSION_PROPERTY_NAME) is not None:
    artifact.properties[utils.VERSION_PROPERTY_NAME].int_value = exec_properties[
        utils.VERSION_PROPERTY_NAME]


class ImageExampleGenDriver(driver.Driver):
  """Resolves span and fingerprint for ImageExampleGen under the local and Beam runners."""

  def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
    self._source = exec_properties['source']
    return super().resolve_exec_properties(exec_properties, pipeline_info, component_info)

  def get_input_processor(self, splits, range_config=None, input_base_uri=None):
    if all(split.pattern == options.WHOLE_INPUT for split in splits):
      return _SourceInputProcessor(self._source, input_base_uri, splits, range_config)
    return _SpanInputProcessor(self._source, input_base_uri, splits, range_config)

  def run(self, execution_info):
    result = super().run(execution_info)
    properties = {key: getattr(value, value.WhichOneof('value'))
                  for key, value in result.exec_properties.items()}
    for artifact in result.output_artifacts[standard_component_specs.EXAMPLES_KEY].artifacts:
      set_span_properties(properties, artifact)
    return result
