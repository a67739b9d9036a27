"""Trainer: TFX's Trainer, plus an optional class map that reaches `run_fn` as class names."""

from typing import Any, Dict, Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import trainer_pb2
from tfx.types import component_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from ganpipe.components import artifacts
from ganpipe.components.trainer import executor


class TrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {
      **standard_component_specs.TrainerSpec.INPUTS,
      executor.CLASS_MAP_KEY: component_spec.ChannelParameter(
          type=artifacts.ClassMap, optional=True),
  }
  PARAMETERS = {
      **standard_component_specs.TrainerSpec.PARAMETERS,
      # A plain parameter, so that Kubeflow can make it a runtime parameter.
      executor.EPOCHS_KEY: component_spec.ExecutionParameter(type=int, optional=True),
  }


class Trainer(base_component.BaseComponent):
  """Runs `run_fn` (an import path) on transformed examples.

  `FnArgs.custom_config` holds the given `custom_config`, plus `class_names` when a class map
  is given. `epochs`, when given (an int or a RuntimeParameter), replaces the `epochs` of
  `custom_config[model_section]`.

  Outputs:
    model: `Format-Serving/`, the exported SavedModel.
    model_run: TensorBoard logs and training samples.
  """
  SPEC_CLASS = TrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, run_fn: str, examples: types.BaseChannel,
               transform_graph: types.BaseChannel,
               schema: Optional[types.BaseChannel] = None,
               class_map: Optional[types.BaseChannel] = None,
               base_model: Optional[types.BaseChannel] = None,
               train_steps: Optional[int] = None, eval_steps: Optional[int] = None,
               custom_config: Optional[Dict[str, Any]] = None,
               model_section: Optional[str] = None,
               epochs: Optional[Union[int, data_types.RuntimeParameter]] = None):
    if epochs is not None and model_section not in (custom_config or {}):
      raise ValueError(f'epochs needs model_section to name a custom_config entry, '
                       f'got {model_section!r}')
    custom_config = dict(custom_config or {})
    if model_section:
      custom_config[executor.MODEL_SECTION_KEY] = model_section
    spec = TrainerSpec(
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        base_model=base_model,
        class_map=class_map,
        train_args=trainer_pb2.TrainArgs(splits=['train'], num_steps=train_steps),
        eval_args=trainer_pb2.EvalArgs(splits=['eval'], num_steps=eval_steps),
        run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        epochs=epochs,
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun))
    super().__init__(spec=spec)
