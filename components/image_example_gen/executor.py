"""ImageExampleGen's Beam executor: reads an image source into train/eval tf.Example splits."""

from typing import Any, Dict, List

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.types import artifact_utils

from components import class_map
from components.image_example_gen import sources

SOURCE_KEY = 'source'
IMAGE_OPTIONS_KEY = 'image_options'
CLASS_MAP_KEY = 'class_map'


def open_source(exec_properties: Dict[str, Any]) -> sources.ImageSource:
  return sources.open_source(exec_properties[SOURCE_KEY], exec_properties['input_base'],
                             sources.ImageOptions.from_json(exec_properties[IMAGE_OPTIONS_KEY]))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """Writes `Split-train` and `Split-eval` of the source, and its class map.

  A source with splits of its own (root/train, root/test) keeps them; any other source is split
  by TFX's hash partition of the `source` feature (the image's stable key).
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._source = open_source(exec_properties)
    super().Do(input_dict, output_dict, exec_properties)
    class_map.write(artifact_utils.get_single_uri(output_dict[CLASS_MAP_KEY]),
                    self._source.class_names)

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    source = self._source

    @beam.ptransform_fn
    def _read_all(pipeline, exec_properties, split_pattern):
      del exec_properties, split_pattern  # the source knows what to read
      return pipeline | source.read()

    return _read_all

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
    given = self._source.given_splits()
    if not given:
      return super().GenerateExamplesByBeam(pipeline, exec_properties)
    return {split: pipeline | f'Read[{split}]' >> self._source.read(source_split)
            for split, source_split in given.items()}
