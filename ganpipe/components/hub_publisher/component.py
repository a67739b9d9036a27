"""HubPublisher: publishes the blessed generator as a TF2 reusable SavedModel, a TF Hub module."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components import artifacts
from ganpipe.components.hub_publisher import executor
from ganpipe.components.hub_publisher import publishing


class HubPublisherSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      executor.HUB_ROOT_KEY: component_spec.ExecutionParameter(type=str),
      executor.PUBLISHER_KEY: component_spec.ExecutionParameter(type=str),
      executor.MODULE_NAME_KEY: component_spec.ExecutionParameter(type=str),
      executor.DATASET_KEY: component_spec.ExecutionParameter(type=str),
      executor.ARCHITECTURE_KEY: component_spec.ExecutionParameter(type=str),
      executor.LICENSE_KEY: component_spec.ExecutionParameter(type=str),
      executor.MAKE_ARCHIVE_KEY: component_spec.ExecutionParameter(type=int),
      executor.DATA_DIR_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      executor.ASSET_URL_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      executor.MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
      executor.EVALUATION_KEY: component_spec.ChannelParameter(
          type=artifacts.GeneratorEvaluation),
      executor.INFRA_BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.InfraBlessing, optional=True),
      # ImageExampleGen's report: how many images of which classes the module card names.
      executor.INGESTION_REPORT_KEY: component_spec.ChannelParameter(
          type=artifacts.IngestionReport, optional=True),
  }
  OUTPUTS = {
      executor.PUBLISHED_MODULE_KEY: component_spec.ChannelParameter(type=artifacts.HubModule),
  }


class HubPublisher(base_component.BaseComponent):
  """Publishes the generator to `<hub_root>/<publisher>/<module_name>/<version>/` for TF Hub.

  Only when the GeneratorEvaluator's blessing, and the infra blessing when given, say blessed;
  otherwise it succeeds without publishing, as TFX's Pusher does. Nor when the newest version
  already holds this generator (a re-run that changed only the classifier): `unchanged`. Each
  version folder holds the generator's SavedModel (loadable with `hub.load` and
  `hub.KerasLayer`); beside it, `<version>.md` documents it in tfhub.dev's format with the
  evaluation's metrics, and with `make_archive`, `<version>.tar.gz` holds the same files.
  `asset_url`, where the hub root is served, gives the documentation its `asset-path`. Versions
  count up from 1 and appear complete or not at all.

  Outputs:
    published_module: HubModule, `published`, `published_path`, `doc_path`, `version`, or
      `reason` (and `unchanged`).
  """
  SPEC_CLASS = HubPublisherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel, blessing: types.BaseChannel,
               evaluation: types.BaseChannel, hub_root: str, dataset: str, architecture: str,
               infra_blessing: Optional[types.BaseChannel] = None, publisher: str = 'ganpipe',
               module_name: str = 'generator',
               license: str = 'Apache-2.0',  # pylint: disable=redefined-builtin
               make_archive: bool = True, data_dir: str = '',
               ingestion_report: Optional[types.BaseChannel] = None, asset_url: str = ''):
    """`dataset` is the source's name and `data_dir` its folder; with `ingestion_report`, the
    module card also says how many images of which classes the generator learnt from."""
    # Fails at pipeline construction rather than at the end of a run.
    executor.module_card({executor.PUBLISHER_KEY: publisher, executor.MODULE_NAME_KEY: module_name,
                          executor.DATASET_KEY: dataset, executor.DATA_DIR_KEY: data_dir,
                          executor.ARCHITECTURE_KEY: architecture, executor.LICENSE_KEY: license},
                         None)
    publishing.check_asset_url(asset_url, make_archive)
    super().__init__(spec=HubPublisherSpec(
        model=model, blessing=blessing, evaluation=evaluation, infra_blessing=infra_blessing,
        ingestion_report=ingestion_report, hub_root=hub_root, publisher=publisher,
        module_name=module_name, dataset=dataset, data_dir=data_dir,
        architecture=architecture, license=license, make_archive=int(make_archive),
        asset_url=asset_url or None, published_module=types.Channel(type=artifacts.HubModule)))
