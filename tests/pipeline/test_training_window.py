"""The training window: Transform, and through it the Trainers, get the newest K spans.

The window is resolved here by TFX's own input resolution (inputs_utils, as the local and Beam
runners' launcher calls it) over an ML Metadata store holding the ingestion node's Examples.
"""

import pytest
from tfx.dsl.compiler import compiler
from tfx.orchestration import metadata
from tfx.orchestration.portable import execution_publish_utils
from tfx.orchestration.portable import inputs_utils
from tfx.orchestration.portable.mlmd import context_lib
from tfx.types import standard_artifacts

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides
from ganpipe.pipeline import pipeline as pipeline_lib


def _compiled(tmp_path, train_spans, target=pipeline_lib.LOCAL):
  config = config_overrides.with_overrides(config_lib.get_config(small=True), {
      'data.dataset': 'folder', 'data.data_dir': str(tmp_path / 'data'),
      'data.span_pattern': 'span-{SPAN}', 'data.train_spans': train_spans,
      'paths.pipeline_root': str(tmp_path / 'root'),
      'paths.metadata_path': str(tmp_path / 'metadata.sqlite')})
  pipeline = pipeline_lib.create_pipeline(config, target=target)
  return config, {node.pipeline_node.node_info.id: node.pipeline_node
                  for node in compiler.Compiler().compile(pipeline).nodes}


def _ingest(handle, node, run_id, span, version=None):
  """Publishes an Examples artifact as the ingestion node's output in pipeline run `run_id`."""
  for context in node.contexts.contexts:
    if context.type.name == 'pipeline_run':
      context.name.field_value.string_value = run_id
  contexts = context_lib.prepare_contexts(handle, node.contexts)
  execution = execution_publish_utils.register_execution(
      handle, node.node_info.type, contexts)
  examples = standard_artifacts.Examples()
  examples.uri = f'/examples/{run_id}'
  examples.span = span
  if version is not None:
    examples.version = version
  execution_publish_utils.publish_succeeded_execution(
      handle, execution.id, contexts, {'examples': [examples]})


def _window(handle, transform):
  """The spans (and versions) of the Examples Transform is given, as the launcher resolves them."""
  only_examples = type(transform)()
  only_examples.CopyFrom(transform)
  for key in list(only_examples.inputs.inputs):
    if 'examples' not in key:
      del only_examples.inputs.inputs[key]
  resolved = inputs_utils.resolve_input_artifacts(pipeline_node=only_examples,
                                                  metadata_handle=handle)
  [inputs] = list(resolved)
  return [(a.span, a.version) for a in inputs['examples']]


@pytest.mark.parametrize('train_spans, expected', [
    (2, [[(1, 0)], [(1, 0), (2, 0)], [(2, 0), (3, 0)], [(3, 0), (4, 2)]]),
    (3, [[(1, 0)], [(1, 0), (2, 0)], [(1, 0), (2, 0), (3, 0)], [(2, 0), (3, 0), (4, 2)]]),
])
def test_transform_gets_the_newest_spans_and_the_newest_version_of_each(
    tmp_path, train_spans, expected):
  config, nodes = _compiled(tmp_path, train_spans)
  assert nodes['transform'].inputs.inputs['examples'].input_graph_ref
  runs = [[(1, None)], [(2, None)], [(3, None)], [(4, 1), (4, 2)]]
  got = []
  connection = metadata.sqlite_metadata_connection_config(config.paths.metadata_path)
  with metadata.Metadata(connection) as handle:
    for index, ingested in enumerate(runs):
      for span, version in ingested:
        _ingest(handle, nodes['image_example_gen'], f'run-{index}', span, version)
      got.append(_window(handle, nodes['transform']))
  assert got == expected


def test_one_span_is_this_runs_ingestion_output_as_before(tmp_path):
  _, nodes = _compiled(tmp_path, 1)
  examples = nodes['transform'].inputs.inputs['examples']
  assert not examples.HasField('input_graph_ref')
  assert examples.channels[0].producer_node_query.id == 'image_example_gen'
  assert 'pipeline_run' in str(examples.channels[0].context_queries)


def test_a_window_on_kubeflow_is_refused_with_the_reason(tmp_path):
  with pytest.raises(ValueError, match=r"--data.train_spans 2 needs a resolver, which Kubeflow "
                     r"Pipelines' v2 backend does not run; pass --data.train_spans 1 there"):
    _compiled(tmp_path, 2, target=pipeline_lib.KUBEFLOW)
