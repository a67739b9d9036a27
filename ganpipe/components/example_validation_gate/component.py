"""ExampleValidationGate: stops the pipeline before training when the data has anomalies.

TFX's ExampleValidator records anomalies but never stops a run. Components that must not run on
anomalous data (the Trainers) take this gate as an upstream node.
"""

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components.example_validation_gate import executor


class ExampleValidationGateSpec(component_spec.ComponentSpec):
  PARAMETERS = {}
  INPUTS = {
      executor.ANOMALIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleAnomalies),
  }
  OUTPUTS = {}


class ExampleValidationGate(base_component.BaseComponent):
  """Fails, printing every anomaly, when ExampleValidator found any in any split."""
  SPEC_CLASS = ExampleValidationGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies: types.BaseChannel):
    super().__init__(spec=ExampleValidationGateSpec(anomalies=anomalies))
