"""DriftValidator: how far the new span drifted from the span of the latest blessed model.

TFX's ExampleValidator checks one span against the schema; drift is a comparison of two spans.
This runs TFDV's drift comparators, whose thresholds the schema carries, on the train split's
statistics of both, and records the figures; ExampleValidationGate stops the run on them.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.drift_validator import executor


class DriftValidatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {}
  INPUTS = {
      executor.STATISTICS_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleStatistics),
      executor.BASELINE_STATISTICS_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleStatistics, optional=True),
      executor.SCHEMA_KEY: component_spec.ChannelParameter(type=standard_artifacts.Schema),
  }
  OUTPUTS = {
      executor.DRIFT_REPORT_KEY: component_spec.ChannelParameter(type=artifacts.DriftReport),
  }


class DriftValidator(base_component.BaseComponent):
  """Measures drift; with no baseline (no blessed model yet), records that there was none.

  Outputs:
    drift_report: see `artifacts.DriftReport`.
  """
  SPEC_CLASS = DriftValidatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, statistics: types.BaseChannel, schema: types.BaseChannel,
               baseline_statistics: Optional[types.BaseChannel] = None):
    super().__init__(spec=DriftValidatorSpec(
        statistics=statistics, schema=schema, baseline_statistics=baseline_statistics,
        drift_report=types.Channel(type=artifacts.DriftReport)))
