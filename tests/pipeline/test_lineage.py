"""`ganpipe lineage`: a pushed model traced back through a hand-built ML Metadata store."""

import json

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx.orchestration import metadata as tfx_metadata

from pipeline import cli
from pipeline import lineage

COMPLETE = metadata_store_pb2.Execution.COMPLETE
INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


class _Store:
  """Writes TFX-shaped records: artifacts, executions with events, run and node contexts."""

  def __init__(self, path):
    self.store = metadata_store.MetadataStore(tfx_metadata.sqlite_metadata_connection_config(path))
    self._types = {}
    self._contexts = {}

  def _type(self, kind, name):
    if (kind, name) not in self._types:
      put = {'artifact': (self.store.put_artifact_type, metadata_store_pb2.ArtifactType),
             'execution': (self.store.put_execution_type, metadata_store_pb2.ExecutionType),
             'context': (self.store.put_context_type, metadata_store_pb2.ContextType)}[kind]
      self._types[(kind, name)] = put[0](put[1](name=name))
    return self._types[(kind, name)]

  def _context(self, type_name, name):
    if name not in self._contexts:
      context = metadata_store_pb2.Context(type_id=self._type('context', type_name), name=name)
      context.id = self.store.put_contexts([context])[0]
      self._contexts[name] = context
    return self._contexts[name]

  def artifact(self, type_name, uri, **properties):
    artifact = metadata_store_pb2.Artifact(type_id=self._type('artifact', type_name), uri=uri)
    for name, value in properties.items():
      field = 'int_value' if isinstance(value, int) else 'string_value'
      setattr(artifact.custom_properties[name], field, value)
    artifact.id = self.store.put_artifacts([artifact])[0]
    return artifact

  def execution(self, node, run, inputs, outputs, **properties):
    """`inputs` and `outputs`: {key: artifact}. Returns the execution id."""
    execution = metadata_store_pb2.Execution(type_id=self._type('execution', node),
                                             last_known_state=COMPLETE)
    for name, value in properties.items():
      execution.custom_properties[name].string_value = value
    pairs = []
    for kind, artifacts in ((INPUT, inputs), (OUTPUT, outputs)):
      for key, artifact in artifacts.items():
        event = metadata_store_pb2.Event(type=kind)
        event.path.steps.add().key = key
        pairs.append((artifact, event))
    contexts = [self._context('pipeline', 'ganpipe'), self._context('pipeline_run', run),
                self._context('node', f'ganpipe.{node}')]
    execution_id, _, _ = self.store.put_execution(execution, pairs, contexts,
                                                  reuse_context_if_already_exist=True)
    return execution_id


@pytest.fixture
def metadata(tmp_path):
  """Two runs: the second's evaluator compares its model with the first's (a baseline)."""
  path = str(tmp_path / 'metadata.sqlite')
  store = _Store(path)
  old_model = store.artifact('Model', '/p/trainer/model/1')
  store.execution('trainer', 'run-1', {}, {'model': old_model})
  examples = store.artifact('Examples', '/p/image_example_gen/examples/2', span=0,
                            input_fingerprint='files:3:abc')
  store.execution('image_example_gen', 'run-2', {}, {'examples': examples},
                  source='folder', input_base='/data/flowers')
  model = store.artifact('Model', '/p/trainer/model/2')
  store.execution('trainer', 'run-2', {'examples': examples}, {'model': model},
                  custom_config='{"epochs": 3}')
  blessing = store.artifact('ModelBlessing', '/p/evaluator/blessing/2', blessed=1)
  store.execution('evaluator', 'run-2',
                  {'model': model, 'baseline_model': old_model, 'examples': examples},
                  {'blessing': blessing})
  pushed = store.artifact('PushedModel', '/p/pusher/pushed_model/2', pushed=1,
                          pushed_destination='/serving/classifier/1700000000')
  store.execution('pusher', 'run-2', {'model': model, 'model_blessing': blessing},
                  {'pushed_model': pushed})
  return path


def test_a_pushed_model_is_traced_back_to_the_images_within_its_run(metadata):
  found = lineage.trace(metadata, 'ganpipe', '/serving/classifier/1700000000/')
  nodes = {execution.node for execution in found.executions.values()}
  assert nodes == {'pusher', 'evaluator', 'trainer', 'image_example_gen'}
  assert {e.run for e in found.executions.values()} == {'run-2'}
  by_uri = {a.uri: a for a in found.artifacts.values()}
  # The baseline came from run-1: named with its run, not expanded into run-1's executions.
  assert by_uri['/p/trainer/model/1'].from_run == 'run-1'
  assert by_uri['/p/trainer/model/1'].producer is None
  ingestion = found.executions[by_uri['/p/image_example_gen/examples/2'].producer]
  assert ingestion.properties == {'source': 'folder', 'input_base': '/data/flowers'}
  trainer = found.executions[by_uri['/p/trainer/model/2'].producer]
  assert trainer.inputs == [('examples', by_uri['/p/image_example_gen/examples/2'].id)]


def test_the_tree_names_what_it_already_showed(metadata):
  text = lineage.format_lineage(lineage.trace(metadata, 'ganpipe', '/p/pusher/pushed_model/2'))
  lines = text.splitlines()
  assert lines[0] == 'Lineage of /p/pusher/pushed_model/2 (run run-2)'
  assert lines[1].startswith('PushedModel ') and lines[1].endswith('/p/pusher/pushed_model/2')
  assert 'pushed=1 pushed_destination=/serving/classifier/1700000000' in text
  assert sum('made by trainer (execution' in line and 'shown above' not in line
             for line in lines) == 1
  assert any(line.strip().startswith('model: Model') and 'shown above' in line for line in lines)
  assert 'made in an earlier run, run-1' in text
  assert 'input_fingerprint=files:3:abc' in text and 'source=folder' in text


def test_unknown_target_is_a_clear_error(metadata, tmp_path):
  with pytest.raises(lineage.LineageError, match='no artifact in the metadata store is at /x'):
    lineage.trace(metadata, 'ganpipe', '/x')
  with pytest.raises(lineage.LineageError, match='no metadata store at'):
    lineage.trace(str(tmp_path / 'absent.sqlite'), 'ganpipe', '/x')


def test_cli_prints_the_tree_or_json(metadata, capsys):
  assert cli.main(['lineage', '/serving/classifier/1700000000',
                   '--paths.metadata_path', metadata]) == 0
  out = capsys.readouterr().out
  assert out.startswith('Lineage of /serving/classifier/1700000000 (run run-2)')
  assert cli.main(['lineage', '/serving/classifier/1700000000', '--json',
                   '--paths.metadata_path', metadata]) == 0
  found = json.loads(capsys.readouterr().out)
  assert found['target'] == '/serving/classifier/1700000000'
  assert len(found['executions']) == 4
  assert cli.main(['lineage', '/nowhere', '--paths.metadata_path', metadata]) == cli.EXIT_FAILED
  assert 'no artifact in the metadata store is at /nowhere' in capsys.readouterr().err
