"""Runs ImageExampleGen's executor the way the launcher does, on small inputs."""

import dataclasses
import glob
import os
from typing import Dict, List, Optional

import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from ganpipe.components import artifacts
from ganpipe.components import beam_staging
from ganpipe.components import class_map
from ganpipe.components.image_example_gen import component
from ganpipe.components.image_example_gen import executor
from ganpipe.components.image_example_gen import report
from ganpipe.pipeline import config as config_lib


@dataclasses.dataclass
class Result:
  splits: Dict[str, List[tf.train.Example]]
  class_names: List[str]
  report: Dict
  report_uri: str
  examples: Optional[standard_artifacts.Examples] = None


def exec_properties_of(gen: component.ImageExampleGen) -> Dict:
  """The component's execution properties as the launcher passes them: protos as JSON."""
  return {key: proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR')
          else value for key, value in gen.exec_properties.items()}


def run(out_dir, beam_args: Optional[List[str]] = None, exec_properties: Optional[Dict] = None,
        **component_args) -> Result:
  """Runs the executor on a component's properties, or on `exec_properties` (a driver's)."""
  if exec_properties is None:
    exec_properties = exec_properties_of(component.ImageExampleGen(**component_args))
  outputs = {
      'examples': standard_artifacts.Examples(),
      'class_map': artifacts.ClassMap(),
      'ingestion_report': artifacts.IngestionReport(),
  }
  for key, artifact in outputs.items():
    artifact.uri = os.path.join(str(out_dir), key)
  context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=[
      f'--runner={config_lib.BEAM_LOCAL_RUNNER}'] + (beam_args or []))
  with beam_staging.no_tfx_package_for_local_runners():  # As `ganpipe run` and the pods do.
    executor.Executor(context).Do({}, {k: [v] for k, v in outputs.items()}, exec_properties)
  splits = {}
  for split in ('train', 'eval'):
    files = glob.glob(os.path.join(outputs['examples'].uri, f'Split-{split}', '*.gz'))
    splits[split] = [tf.train.Example.FromString(r.numpy()) for r in
                     tf.data.TFRecordDataset(files, compression_type='GZIP')]
  assert outputs['examples'].split_names == '["train", "eval"]'
  return Result(splits, class_map.read(outputs['class_map'].uri),
                report.load(outputs['ingestion_report'].uri), outputs['ingestion_report'].uri,
                outputs['examples'])


def value(example: tf.train.Example, key: str):
  feature = example.features.feature[key]
  values = feature.int64_list.value or feature.bytes_list.value
  return values[0]


def sources(examples) -> List[str]:
  return sorted(value(e, 'source').decode() for e in examples)
