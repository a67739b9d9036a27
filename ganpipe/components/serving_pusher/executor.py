"""ServingPusher's executor: TFX's blessing checks, then an atomic, retained push."""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from ganpipe.components import artifacts
from ganpipe.components import versioning
from ganpipe.components.serving_pusher import publishing
from ganpipe.components.serving_pusher import rollout

MODEL_NAME_KEY = 'model_name'
SERVING_ROOT_KEY = 'serving_root'
KEEP_VERSIONS_KEY = 'keep_versions'
MODELS_CONFIG_BASE_KEY = 'models_config_base_path'
ROLLOUT_KEY = 'rollout'


class Executor(tfx_pusher_executor.Executor):
  """Pushes to `<serving_root>/<model_name>/<version>/` only when every blessing says yes, and
  the newest version there is not this model already (then: `unchanged`, not pushed).

  `custom_config` holds `model_name`, `serving_root`, `keep_versions` and optionally
  `models_config_base_path` (where the model server sees `serving_root`) and `rollout`
  (`direct`, the default, or `canary`: see rollout.py).
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or '{}')
    name, root = config[MODEL_NAME_KEY], config[SERVING_ROOT_KEY]
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    # TFX's check: the model blessing and the infra blessing must both be present and blessed.
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(artifacts.REASON_PROPERTY,
                                            _not_blessed_reason(input_dict))
      return
    model_path = self.GetModelPath(input_dict)
    base_path = os.path.join(root, name)
    # A re-run that changed only the other model re-evaluates this one and blesses it again; a
    # push would make a new version of the same model, and TF Serving would load it again.
    unchanged = versioning.latest_if_unchanged(model_path, base_path)
    if unchanged:
      version, path = unchanged
      logging.info('Not pushing %s: version %d at %s is the same model', name, version, path)
      self._MarkNotPushed(model_push)
      model_push.set_int_custom_property(artifacts.UNCHANGED_PROPERTY, 1)
      model_push.set_string_custom_property(
          artifacts.REASON_PROPERTY, f'version {version} at {path} already serves this model')
      return
    before = versioning.versions(base_path)
    keep = int(config.get(KEEP_VERSIONS_KEY, 3))
    if config.get(ROLLOUT_KEY, rollout.DIRECT) == rollout.CANARY and before:
      serving_path, config_path, retired = _push_canary(model_path, root, name, before, keep,
                                                        config.get(MODELS_CONFIG_BASE_KEY))
    else:
      serving_path = publishing.push_version(model_path, base_path)
      # A first canary push has nothing to be compared with: it serves alone, as a direct one.
      config_path = publishing.write_models_config(
          root, config.get(MODELS_CONFIG_BASE_KEY),
          lambda models: rollout.serve_directly(rollout.model_entry(models, name)))
      retired = publishing.retain_latest(base_path, keep)
    version = os.path.basename(serving_path)
    logging.info('Pushed %s version %s to %s; retired %s; wrote %s', name, version,
                 serving_path, retired or 'nothing', config_path)
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


def _push_canary(model_path: str, root: str, name: str, before: List[int], keep: int,
                 base_path_prefix: Optional[str]) -> Tuple[str, str, List[int]]:
  """Pushes a version beside the stable one; returns its path, the config's, and the retired.

  The config naming both versions is written before the version's folder appears: under the
  policy it replaces (TF Serving's default, the latest version), a server that saw the folder
  first would load it and unload the stable version its `stable` clients use.
  """
  base_path = os.path.join(root, name)
  version = publishing.next_version(base_path)
  served = []

  def edit(models):
    entry = rollout.model_entry(models, name)
    rollout.add_canary(entry, before, version)
    served.extend(rollout.served_versions(entry))

  config_path = publishing.write_models_config(root, base_path_prefix, edit)
  serving_path = publishing.push_version(model_path, base_path, version)
  # The stable version is kept whatever its age; a canary it replaces may go.
  return serving_path, config_path, publishing.retain_latest(base_path, keep, served)


def _not_blessed_reason(input_dict: Dict[str, List[types.Artifact]]) -> str:
  reasons = []
  for key, what in ((standard_component_specs.MODEL_BLESSING_KEY, 'model blessing'),
                    (standard_component_specs.INFRA_BLESSING_KEY, 'infra validation')):
    for blessing in input_dict.get(key) or []:
      if blessing.get_int_custom_property('blessed') != 1:
        detail = blessing.get_string_custom_property(artifacts.REASON_PROPERTY)
        reasons.append(f'not passed: {what}' + (f' ({detail})' if detail else ''))
  return '; '.join(reasons) or 'not blessed'
