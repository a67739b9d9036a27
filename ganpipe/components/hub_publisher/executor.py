"""HubPublisher's executor: TFX's blessing checks, then publishing as a TF Hub module."""

import json
import os
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from ganpipe.components import artifacts
from ganpipe.components.generator_evaluator import executor as evaluator_executor
from ganpipe.components.hub_publisher import publishing

MODEL_KEY = 'model'
BLESSING_KEY = 'blessing'
EVALUATION_KEY = 'evaluation'
INFRA_BLESSING_KEY = 'infra_blessing'
PUBLISHED_MODULE_KEY = 'published_module'
HUB_ROOT_KEY = 'hub_root'
PUBLISHER_KEY = 'publisher'
MODULE_NAME_KEY = 'module_name'
DATASET_KEY = 'dataset'
ARCHITECTURE_KEY = 'architecture'
LICENSE_KEY = 'license'
MAKE_ARCHIVE_KEY = 'make_archive'
ASSET_URL_KEY = 'asset_url'
PUBLISHED_PROPERTY = 'published'
PUBLISHED_PATH_PROPERTY = 'published_path'
ARCHIVE_PATH_PROPERTY = 'archive_path'
DOC_PATH_PROPERTY = 'doc_path'
VERSION_PROPERTY = 'version'


class Executor(base_executor.BaseExecutor):
  """Publishes `<hub_root>/<publisher>/<module_name>/<version>/` when every blessing says yes."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    blessing = artifact_utils.get_single_instance(input_dict[BLESSING_KEY])
    evaluation = artifact_utils.get_single_instance(input_dict[EVALUATION_KEY])
    infra_blessings = input_dict.get(INFRA_BLESSING_KEY) or []
    infra_blessing = infra_blessings[0] if infra_blessings else None
    module = artifact_utils.get_single_instance(output_dict[PUBLISHED_MODULE_KEY])

    reason = not_blessed_reason(blessing, infra_blessing)
    if reason:
      # Like TFX's Pusher: a model that is not blessed is not an error, just not published.
      logging.info('Not publishing %s: %s', model.uri, reason)
      module.set_int_custom_property(PUBLISHED_PROPERTY, 0)
      module.set_string_custom_property(artifacts.REASON_PROPERTY, reason)
      return

    with tf.io.gfile.GFile(os.path.join(evaluation.uri, evaluator_executor.METRICS_FILE)) as f:
      metrics = json.load(f)
    card = publishing.ModuleCard(
        publisher=exec_properties[PUBLISHER_KEY], module_name=exec_properties[MODULE_NAME_KEY],
        dataset=exec_properties[DATASET_KEY], architecture=exec_properties[ARCHITECTURE_KEY],
        license=exec_properties[LICENSE_KEY])
    publication = publishing.publish(
        path_utils.serving_model_path(model.uri), exec_properties[HUB_ROOT_KEY], card, metrics,
        make_archive=bool(exec_properties[MAKE_ARCHIVE_KEY]),
        asset_url=exec_properties.get(ASSET_URL_KEY) or '')
    logging.info('Published %s version %d to %s', card.handle, publication.version,
                 publication.path)
    module.set_int_custom_property(PUBLISHED_PROPERTY, 1)
    module.set_string_custom_property(PUBLISHED_PATH_PROPERTY, publication.path)
    module.set_int_custom_property(VERSION_PROPERTY, publication.version)
    module.set_string_custom_property(DOC_PATH_PROPERTY, publication.doc_path)
    if publication.archive_path:
      module.set_string_custom_property(ARCHIVE_PATH_PROPERTY, publication.archive_path)


def not_blessed_reason(blessing: types.Artifact,
                       infra_blessing: Optional[types.Artifact]) -> Optional[str]:
  """Why the generator must not be published, by TFX's blessing checks; None when it may."""
  if not model_utils.is_model_blessed(blessing):
    return ('generator not blessed: ' +
            (blessing.get_string_custom_property(artifacts.REASON_PROPERTY) or
             'no reason given'))
  if infra_blessing is not None and not model_utils.is_infra_validated(infra_blessing):
    return ('generator not blessed by infra validation: ' +
            (infra_blessing.get_string_custom_property(artifacts.REASON_PROPERTY) or
             'no reason given'))
  return None
