"""ExampleValidationGate: stops the pipeline before training when the data has anomalies, or
has drifted from the span that trained the latest blessed model.

TFX's ExampleValidator records anomalies but never stops a run. Components that must not run on
anomalous or drifted data (the Trainers) take this gate as an upstream node.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.example_validation_gate import executor


class ExampleValidationGateSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # Recorded on the execution, so a run that trained on drifted data says so.
      executor.ALLOW_DRIFT_KEY: component_spec.ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.ANOMALIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleAnomalies),
      executor.DRIFT_REPORT_KEY: component_spec.ChannelParameter(
          type=artifacts.DriftReport, optional=True),
  }
  OUTPUTS = {}


class ExampleValidationGate(base_component.BaseComponent):
  """Fails, printing every anomaly, when ExampleValidator found any in any split; and, naming
  each feature and its distance, when the drift report has a feature over its threshold, unless
  `allow_drift`."""
  SPEC_CLASS = ExampleValidationGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies: types.BaseChannel,
               drift_report: Optional[types.BaseChannel] = None, allow_drift: bool = False):
    super().__init__(spec=ExampleValidationGateSpec(
        anomalies=anomalies, drift_report=drift_report, allow_drift=int(allow_drift)))
