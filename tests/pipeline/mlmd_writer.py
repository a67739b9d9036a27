"""Writing a small ML Metadata store by hand, shaped as TFX writes it, for tests."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata as tfx_metadata

COMPLETE = metadata_store_pb2.Execution.COMPLETE
FAILED = metadata_store_pb2.Execution.FAILED
INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


class MlmdWriter:
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

  def execution(self, node, run, inputs, outputs, state=COMPLETE, **properties):
    """`inputs` and `outputs`: {key: artifact, or a list of them}. Returns the execution id."""
    execution = metadata_store_pb2.Execution(type_id=self._type('execution', node),
                                             last_known_state=state)
    for name, value in properties.items():
      field = 'int_value' if isinstance(value, int) else 'string_value'
      setattr(execution.custom_properties[name], field, value)
    pairs = []
    for kind, artifacts in ((INPUT, inputs), (OUTPUT, outputs)):
      for key, listed in artifacts.items():
        for index, artifact in enumerate(listed if isinstance(listed, list) else [listed]):
          event = metadata_store_pb2.Event(type=kind)
          event.path.steps.add().key = key
          event.path.steps.add().index = index
          pairs.append((artifact, event))
    contexts = [self._context('pipeline', 'ganpipe'), self._context('pipeline_run', run),
                self._context('node', f'ganpipe.{node}')]
    execution_id, _, _ = self.store.put_execution(execution, pairs, contexts,
                                                  reuse_context_if_already_exist=True)
    return execution_id
