"""ImageSchemaGen: SchemaGen for ImageExampleGen's examples, inferred from the train split."""

from tfx import types
from tfx.components.schema_gen import component as schema_gen_component
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from ganpipe.components.image_schema_gen import executor


class ImageSchemaGenSpec(standard_component_specs.SchemaGenSpec):
  """SchemaGen's spec, plus the drift thresholds the schema carries."""
  PARAMETERS = {
      **standard_component_specs.SchemaGenSpec.PARAMETERS,
      executor.MAX_LABEL_DRIFT_KEY: component_spec.ExecutionParameter(type=float),
      executor.MAX_FEATURE_DRIFT_KEY: component_spec.ExecutionParameter(type=float),
  }


class ImageSchemaGen(schema_gen_component.SchemaGen):
  """Infers the schema from the train split, so that eval data is validated against it.

  Unlike stock SchemaGen, identifiers get no value domain, `label` gets an integer domain, and
  the class distribution and the image figures get drift comparators (`schema_rules.py`).

  Outputs:
    schema: `schema.pbtxt`.
  """
  SPEC_CLASS = ImageSchemaGenSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, statistics: types.BaseChannel, max_label_drift: float = 0.2,
               max_feature_drift: float = 0.2):
    """Builds the component.

    Args:
      statistics: StatisticsGen's output; the schema is inferred from its train split.
      max_label_drift: the L-infinity threshold of the class distribution's drift.
      max_feature_drift: the Jensen-Shannon threshold of the image figures' drift.
    """
    spec = ImageSchemaGenSpec(
        statistics=statistics, infer_feature_shape=1,
        exclude_splits=json_utils.dumps(['eval']),
        max_label_drift=float(max_label_drift), max_feature_drift=float(max_feature_drift),
        schema=types.Channel(type=standard_artifacts.Schema))
    # SchemaGen's own __init__ builds SchemaGenSpec, which has no place for the thresholds.
    base_component.BaseComponent.__init__(self, spec=spec)
