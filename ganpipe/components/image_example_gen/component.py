"""ImageExampleGen: a file-based ExampleGen for labelled images."""

from typing import Optional, Sequence, Tuple

from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from ganpipe.components import artifacts
from ganpipe.components.image_example_gen import driver
from ganpipe.components.image_example_gen import executor
from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import sources
from ganpipe.models import features


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  """FileBasedExampleGen's spec, plus the source, image policy, bad-record limit and outputs."""
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      executor.SOURCE_KEY: component_spec.ExecutionParameter(type=str),
      executor.IMAGE_POLICY_KEY: component_spec.ExecutionParameter(type=str),
      executor.MAX_BAD_FRACTION_KEY: component_spec.ExecutionParameter(type=float),
  }
  OUTPUTS = {
      standard_component_specs.EXAMPLES_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.Examples),
      executor.CLASS_MAP_KEY: component_spec.ChannelParameter(type=artifacts.ClassMap),
      executor.INGESTION_REPORT_KEY:
          component_spec.ChannelParameter(type=artifacts.IngestionReport),
  }


class ImageExampleGen(example_gen_component.FileBasedExampleGen):
  """Ingests labelled images as tf.Examples (see `images.py` for the feature layout).

  Outputs:
    examples: `Split-train` and `Split-eval`, gzipped TFRecords of tf.Example.
    class_map: `class_map.json`, the class ids and names.
    ingestion_report: `ingestion_report.json` and `rejected-*.jsonl`.
  """
  SPEC_CLASS = ImageExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.ImageExampleGenDriver

  def __init__(self, source: str, image_shape: Tuple[int, int, int],
               input_base: Optional[str] = None, on_wrong_size: str = options.RESIZE,
               formats: Sequence[str] = options.DEFAULT_FORMATS, max_bad_fraction: float = 0.01,
               train_buckets: int = 4, eval_buckets: int = 1,
               max_image_pixels: int = options.MAX_PIXELS, span_pattern: Optional[str] = None):
    """Builds the component.

    Args:
      source: one of `sources.SOURCES`.
      image_shape: (height, width, channels) every image is converted to.
      input_base: the source's folder or URI; `digits` ignores it, `fashion-mnist` defaults it.
      on_wrong_size: `resize` or `reject` images of another size.
      formats: accepted encodings of image files.
      max_bad_fraction: the component fails when more of the records are rejected.
      train_buckets: the train split's share of each class, when the source has no splits of
        its own: train_buckets / (train_buckets + eval_buckets).
      eval_buckets: the eval split's share of each class, likewise.
      max_image_pixels: larger input images are rejected (`too_large`) without being decoded.
      span_pattern: the span's folder or file under `input_base`, with TFX's `{SPAN}` (and
        optionally `{VERSION}`) spec: the driver ingests the newest span, as TFX's
        FileBasedExampleGen does. None reads all of `input_base` as span 0.
    """
    if source not in sources.SOURCES:
      raise ValueError(f'unknown image source {source!r}; expected one of '
                       f'{", ".join(sources.SOURCES)}')
    policy = images.ImagePolicy(tuple(image_shape), on_wrong_size, tuple(formats),
                                int(max_image_pixels))
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name='single_split',
                                            pattern=span_pattern or options.WHOLE_INPUT)])
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=train_buckets),
            example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=eval_buckets),
        ],
        # The split hashes the stable key, not the bytes, so that an image's split is fixed on
        # any runner; it cuts each class in the buckets' ratio (split.py).
        partition_feature_name=features.SOURCE_KEY))
    spec = ImageExampleGenSpec(
        input_base=input_base or '',
        input_config=input_config,
        output_config=output_config,
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        source=source,
        image_policy=policy.to_json(),
        max_bad_fraction=float(max_bad_fraction),
        examples=types.Channel(type=standard_artifacts.Examples),
        class_map=types.Channel(type=artifacts.ClassMap),
        ingestion_report=types.Channel(type=artifacts.IngestionReport),
    )
    super(example_gen_component.FileBasedExampleGen, self).__init__(spec=spec)
