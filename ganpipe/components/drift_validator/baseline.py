"""A resolver strategy for the drift baseline: the statistics of the run that trained the latest
blessed model."""

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.types import standard_artifacts

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

MODEL_KEY = 'model'
MODEL_BLESSING_KEY = 'model_blessing'
STATISTICS_KEY = 'statistics'
_RUN_CONTEXT = 'pipeline_run'


class TrainingRunStatisticsStrategy(resolver.ResolverStrategy):
  """Resolves `statistics` to the one written in the pipeline run whose Trainer produced the
  latest blessed `model`: the statistics of the span that model was trained on when it was new.

  Inputs: `model`, `model_blessing` and `statistics`, every one the pipeline wrote. Outputs the
  same keys, as TFX's resolver node requires of a strategy (a missing key fails it:
  `_resolve_input_graph_ref` in tfx/orchestration/portable/input_resolution/
  node_inputs_resolver.py): `statistics`, empty when no model is blessed yet, and the blessed
  model and its blessing.
  """

  def resolve_artifacts(
      self, store: mlmd.MetadataStore, input_dict: Dict[str, List[types.Artifact]]
  ) -> Optional[Dict[str, List[types.Artifact]]]:
    result = {MODEL_KEY: [], MODEL_BLESSING_KEY: [], STATISTICS_KEY: []}
    models, blessings = input_dict.get(MODEL_KEY, []), input_dict.get(MODEL_BLESSING_KEY, [])
    if not models or not blessings:
      return result
    # pylint: disable-next=protected-access
    latest = latest_blessed_model_strategy.LatestBlessedModelStrategy()._resolve(
        {MODEL_KEY: models, MODEL_BLESSING_KEY: blessings}, MODEL_KEY, MODEL_BLESSING_KEY)
    if not latest.get(MODEL_KEY):
      return result
    runs = training_runs(store, latest[MODEL_KEY][0].id)
    candidates = [s for s in input_dict.get(STATISTICS_KEY, [])
                  if runs & {c.id for c in store.get_contexts_by_artifact(s.id)}]
    if candidates:
      result.update(latest)
      result[STATISTICS_KEY] = [max(candidates, key=lambda s: s.id)]
    return result


def training_runs(store: mlmd.MetadataStore, model_id: int) -> set:
  """The ids of the pipeline-run contexts of the execution that wrote artifact `model_id`."""
  outputs = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
  executions = [e.execution_id for e in store.get_events_by_artifact_ids([model_id])
                if e.type in outputs]
  run_type = store.get_context_type(_RUN_CONTEXT)
  return {c.id for execution in executions for c in store.get_contexts_by_execution(execution)
          if c.type_id == run_type.id}


def training_run_statistics(trainer_id: str, evaluator_id: str,
                            statistics_id: str) -> resolver.Resolver:
  """A Resolver node giving the baseline statistics for drift, among every run's."""
  return resolver.Resolver(
      strategy_class=TrainingRunStatisticsStrategy,
      model=types.Channel(type=standard_artifacts.Model, producer_component_id=trainer_id),
      model_blessing=types.Channel(type=standard_artifacts.ModelBlessing,
                                   producer_component_id=evaluator_id),
      statistics=types.Channel(type=standard_artifacts.ExampleStatistics,
                               producer_component_id=statistics_id,
                               output_key='statistics'))
