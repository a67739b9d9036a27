"""A resolver strategy for the evaluation baseline: the latest blessed model that is not the candidate.

TFX's LatestBlessedModelStrategy runs before the Trainer and cannot know the candidate. On a re-run
whose Trainer is served from the cache, it returns the candidate itself as its own baseline: the
Evaluator then runs again on new inputs, blesses the model against itself and the Pusher pushes a
duplicate version. Taking the candidate as an input fixes both, and a re-run is cached end to end.
"""

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.types import standard_artifacts

import ml_metadata as mlmd

CANDIDATE_KEY = 'candidate'
MODEL_KEY = 'model'
MODEL_BLESSING_KEY = 'model_blessing'


class LatestBlessedBaselineStrategy(resolver.ResolverStrategy):
  """Resolves the latest blessed Model other than the `candidate` input.

  Inputs: `candidate` (the Trainer's model), `model` and `model_blessing` (all models and
  blessings to choose from). Outputs `model` and `model_blessing`, empty when there is no
  blessed model yet besides the candidate.
  """

  def resolve_artifacts(
      self, store: mlmd.MetadataStore, input_dict: Dict[str, List[types.Artifact]]
  ) -> Optional[Dict[str, List[types.Artifact]]]:
    candidate_ids = {artifact.id for artifact in input_dict.get(CANDIDATE_KEY, [])}
    models = [m for m in input_dict.get(MODEL_KEY, []) if m.id not in candidate_ids]
    blessings = input_dict.get(MODEL_BLESSING_KEY, [])
    result = {CANDIDATE_KEY: input_dict.get(CANDIDATE_KEY, []), MODEL_KEY: [],
              MODEL_BLESSING_KEY: []}
    if not models or not blessings:
      return result
    # pylint: disable=protected-access
    latest = latest_blessed_model_strategy.LatestBlessedModelStrategy()._resolve(
        {MODEL_KEY: models, MODEL_BLESSING_KEY: blessings}, MODEL_KEY, MODEL_BLESSING_KEY)
    result.update(latest)
    return result


def latest_blessed_baseline(candidate: types.BaseChannel, trainer_id: str,
                            evaluator_id: str) -> resolver.Resolver:
  """A Resolver node giving the baseline for `candidate`, among `trainer_id`'s models."""
  return resolver.Resolver(
      strategy_class=LatestBlessedBaselineStrategy,
      candidate=candidate,
      model=types.Channel(type=candidate.type, producer_component_id=trainer_id),
      model_blessing=types.Channel(type=standard_artifacts.ModelBlessing,
                                   producer_component_id=evaluator_id))
