"""The node ids that `status` reads without TFX are the ones `create_pipeline` builds."""

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import nodes
from ganpipe.pipeline import overrides as config_overrides
from ganpipe.pipeline import pipeline as pipeline_lib


def test_node_ids_are_the_pipeline_components_in_its_order():
  pipeline = pipeline_lib.create_pipeline(config_lib.get_config())
  assert list(nodes.NODE_IDS) == [component.id for component in pipeline.components]


def test_with_an_imported_schema_the_node_ids_are_still_an_order_the_pipeline_runs_in():
  # The schema importer depends on nothing, so TFX sorts it elsewhere; any order that puts each
  # node after its inputs' makers reads as well in a summary.
  config = config_overrides.with_overrides(config_lib.get_config(),
                                           {'data.schema_path': '/schemas/schema.pbtxt'})
  components = pipeline_lib.create_pipeline(config).components
  assert set(nodes.NODE_IDS) == {component.id for component in components}
  position = {node: index for index, node in enumerate(nodes.NODE_IDS)}
  for component in components:
    for upstream in component.upstream_nodes:
      assert position[upstream.id] < position[component.id], (upstream.id, component.id)


def test_the_summary_names_nodes_the_pipeline_has():
  for model in nodes.EVALUATED_MODELS.values():
    node_ids = {value for key, value in model.items() if key not in ('metric', 'kind')}
    assert node_ids <= set(nodes.NODE_IDS)
  assert nodes.INGESTION_NODE in nodes.NODE_IDS
