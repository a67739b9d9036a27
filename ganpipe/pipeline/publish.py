"""`ganpipe publish`: publish a module the pipeline published again, under another hub root.

The pipeline's HubPublisher writes `<paths.hub_root>/<publisher>/<module>/<version>/`. To promote
that module to a shared root (a team's `gs://` bucket, say) nothing is retrained or re-evaluated:
ML Metadata knows the generator SavedModel, the evaluation metrics and the module card that
HubPublisher used, and the same `publishing.publish` writes them, atomically, as the next
version under the new root.
"""

import json
import os
from typing import Optional

import tensorflow as tf
from tfx.utils import path_utils

from ganpipe.components.generator_evaluator import executor as evaluator_executor
from ganpipe.components.hub_publisher import executor as hub_executor
from ganpipe.components.hub_publisher import publishing
from ganpipe.pipeline import lineage

_CARD_FIELDS = (hub_executor.PUBLISHER_KEY, hub_executor.MODULE_NAME_KEY,
                hub_executor.DATASET_KEY, hub_executor.ARCHITECTURE_KEY,
                hub_executor.LICENSE_KEY, hub_executor.DATA_DIR_KEY)


class PublishError(LookupError):
  """The source is not a module that HubPublisher published."""


def republish(metadata_path: str, pipeline_name: str, module_path: str, hub_root: str,
              make_archive: Optional[bool] = None,
              asset_url: str = '') -> publishing.Publication:
  """Publishes the generator behind a published module under `hub_root`.

  Args:
    metadata_path: the MLMD store of the run that published it.
    pipeline_name: the pipeline's name.
    module_path: a module version folder that HubPublisher wrote.
    hub_root: where to publish; the module keeps its publisher and name under it.
    make_archive: write `<version>.tar.gz` too; by default, as the pipeline did, and always
      with an `asset_url`.
    asset_url: the URL `hub_root` is served from, for the documentation's `asset-path`. Not the
      pipeline's: that one named where the pipeline's hub root is served.

  Raises:
    PublishError: `module_path` is not a module HubPublisher published.
    lineage.LineageError: nothing in the store is at `module_path`.
  """
  found = lineage.trace(metadata_path, pipeline_name, module_path)
  root = found.artifacts[found.root]
  publisher = found.executions.get(root.producer) if root.producer is not None else None
  if root.type != 'ganpipe.HubModule' or publisher is None or not root.properties.get(
      hub_executor.PUBLISHED_PROPERTY):
    raise PublishError(f'{module_path} is not a TF Hub module that the pipeline published '
                       f'(it is a {root.type}); pass a folder under --paths.hub_root')
  inputs = dict(publisher.inputs)
  settings = publisher.properties
  report = inputs.get(hub_executor.INGESTION_REPORT_KEY)
  card = hub_executor.module_card(
      {field: settings[field] for field in _CARD_FIELDS if field in settings},
      found.artifacts[report].uri if report is not None else None)
  evaluation = found.artifacts[inputs[hub_executor.EVALUATION_KEY]]
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, evaluator_executor.METRICS_FILE)) as f:
    metrics = json.load(f)
  model = found.artifacts[inputs[hub_executor.MODEL_KEY]]
  if make_archive is None:
    make_archive = bool(asset_url) or bool(settings.get(hub_executor.MAKE_ARCHIVE_KEY, 1))
  return publishing.publish(path_utils.serving_model_path(model.uri), hub_root, card, metrics,
                            make_archive=make_archive, asset_url=asset_url)
