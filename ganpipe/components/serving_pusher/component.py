"""ServingPusher: TFX's Pusher with atomic versions, retention and a models.config."""

from typing import Optional

from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2

from ganpipe.components.serving_pusher import executor
from ganpipe.components.serving_pusher import rollout


class ServingPusher(tfx_pusher_component.Pusher):
  """Pushes a blessed model to `<serving_root>/<model_name>/<version>/` for TF Serving.

  It pushes only when the model blessing and the infra blessing both say blessed, and the
  newest version is not this model already (compared by content, warmup requests aside). Given
  an `infra_blessing` and no `model`, it pushes the infra validator's model, which carries the
  warmup requests in `assets.extra/`. Each version is copied to a hidden temporary folder and
  renamed into place, so TF Serving never sees a partial version; versions increase
  monotonically; the newest `keep_versions` are kept; `<serving_root>/models.config` lists every
  pushed model. With `rollout_mode='canary'`, the new version serves beside the stable one
  until `ganpipe rollout` labels, promotes or rolls it back (rollout.py).

  Outputs:
    pushed_model: PushedModel; `pushed`, `pushed_destination`, `pushed_version`, and `reason`
      when it was not pushed (with `unchanged` 1 when that is why).
  """

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model_name: str, serving_root: str,
               model_blessing: types.BaseChannel,
               infra_blessing: Optional[types.BaseChannel] = None,
               model: Optional[types.BaseChannel] = None, keep_versions: int = 3,
               models_config_base_path: Optional[str] = None,
               rollout_mode: str = rollout.DIRECT):
    if keep_versions < 1:
      raise ValueError(f'keep_versions must be at least 1, got {keep_versions}')
    if rollout_mode not in rollout.ROLLOUTS:
      raise ValueError(f'rollout must be one of {", ".join(rollout.ROLLOUTS)}, got '
                       f'{rollout_mode!r}')
    custom_config = {executor.MODEL_NAME_KEY: model_name,
                     executor.SERVING_ROOT_KEY: serving_root,
                     executor.KEEP_VERSIONS_KEY: keep_versions,
                     executor.ROLLOUT_KEY: rollout_mode}
    if models_config_base_path:
      custom_config[executor.MODELS_CONFIG_BASE_KEY] = models_config_base_path
    super().__init__(
        model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=f'{serving_root.rstrip("/")}/{model_name}')),
        custom_config=custom_config)
