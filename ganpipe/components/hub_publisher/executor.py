"""HubPublisher's executor: TFX's blessing checks, then publishing as a TF Hub module."""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from ganpipe.components import artifacts
from ganpipe.components import versioning
from ganpipe.components.generator_evaluator import executor as evaluator_executor
from ganpipe.components.hub_publisher import publishing
from ganpipe.components.image_example_gen import report as image_report

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
DATA_DIR_KEY = 'data_dir'
INGESTION_REPORT_KEY = 'ingestion_report'
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
    reports = input_dict.get(INGESTION_REPORT_KEY) or []
    card = module_card(exec_properties, reports[0].uri if reports else None)
    model_path = path_utils.serving_model_path(model.uri)
    unchanged = versioning.latest_if_unchanged(
        model_path, publishing.module_root(exec_properties[HUB_ROOT_KEY], card))
    if unchanged:
      version, path = unchanged
      logging.info('Not publishing %s: version %d at %s is the same generator', card.handle,
                   version, path)
      module.set_int_custom_property(PUBLISHED_PROPERTY, 0)
      module.set_int_custom_property(artifacts.UNCHANGED_PROPERTY, 1)
      module.set_string_custom_property(
          artifacts.REASON_PROPERTY, f'version {version} at {path} already holds this generator')
      return
    publication = publishing.publish(
        model_path, exec_properties[HUB_ROOT_KEY], card, metrics,
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


# What the built-in sources are, and what kind of files the others read.
_BUILT_IN = {'digits': "scikit-learn's 8x8 handwritten digits", 'fashion-mnist': 'Fashion-MNIST'}
_FILES = {'folder': 'the image folder', 'idx': 'the IDX files in', 'npz': 'the .npz files in',
          'tfrecord': 'the TFRecords in'}
_CLASSES_LISTED = 10


def describe_dataset(source: str, data_dir: str,
                     report: Optional[Dict[str, Any]]) -> Tuple[str, str]:
  """(name, description) of the training data, for the module card.

  The name is the data folder's (`flowers`), or the built-in dataset's; the description says
  what and how much it was, from ImageExampleGen's ingestion report when there is one.
  """
  folder = os.path.basename(data_dir.rstrip('/')) if data_dir else ''
  if source in _BUILT_IN and (source == 'digits' or not data_dir):
    name, what = source, _BUILT_IN[source]
  elif source in _BUILT_IN:
    name, what = source, f'{_BUILT_IN[source]} from `{data_dir}`'
  else:
    name = folder or source
    what = f'{_FILES.get(source, source)} `{folder}` (`{data_dir}`)'
  name = ' '.join(name.replace('-->', '').split()) or source  # a one-line metadata value
  if not report:
    return name, f'Trained on {what}.'
  classes = report.get('classes') or []
  listed = ', '.join(classes[:_CLASSES_LISTED]) + (
      f' and {len(classes) - _CLASSES_LISTED} more' if len(classes) > _CLASSES_LISTED else '')
  splits = report.get('accepted_by_split', {})
  text = (f'Trained on {what}: {report["accepted"]:,} images in {len(classes)} classes '
          f'({listed}), {splits.get("train", 0):,} for training and {splits.get("eval", 0):,} '
          'for evaluation.')
  if report.get('rejected'):
    text += (f' {report["rejected"]:,} more records could not be used and were left out (see '
             'the ingestion report).')
  if report.get('empty_classes'):
    text += (' Class folders without images, left out: ' +
             ', '.join(report['empty_classes']) + '.')
  return name, text


def module_card(exec_properties: Dict[str, Any],
                ingestion_report_uri: Optional[str]) -> publishing.ModuleCard:
  """The card of the module HubPublisher publishes with these settings, naming its data from
  the ingestion report at `ingestion_report_uri` (None: runs from before it was an input)."""
  report = image_report.load(ingestion_report_uri) if ingestion_report_uri else None
  name, description = describe_dataset(exec_properties[DATASET_KEY],
                                       exec_properties.get(DATA_DIR_KEY) or '', report)
  return publishing.ModuleCard(
      publisher=exec_properties[PUBLISHER_KEY], module_name=exec_properties[MODULE_NAME_KEY],
      dataset=name, architecture=exec_properties[ARCHITECTURE_KEY],
      license=exec_properties[LICENSE_KEY], dataset_description=description)
