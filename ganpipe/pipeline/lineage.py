"""Lineage from ML Metadata: which executions and artifacts led to a pushed or published model.

Given a serving version folder, a TF Hub module folder or any artifact URI, `trace` walks MLMD's
events back from that artifact: the execution that produced it, that execution's inputs, their
producers, and so on to the images ingested. It stays within the run that produced the target;
an input that an earlier run produced (a baseline model, say) is named with its run, not
expanded, so one query never walks a pipeline's whole history.
"""

import dataclasses
import datetime
import json
import os
import textwrap
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ganpipe.pipeline import run_summary

# Artifact custom properties that say where a model went.
_DESTINATION_PROPERTIES = ('pushed_destination', 'published_path', 'archive_path')
# Shown in the text form; the JSON form has every property.
_SHOWN_ARTIFACT_PROPERTIES = ('blessed', 'pushed', 'pushed_destination', 'pushed_version',
                              'published_path', 'version', 'span', 'input_fingerprint', 'reason')
_SHOWN_VALUE_CHARS = 100
_WIDTH = 100
_PRODUCED = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_CONSUMED = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


class LineageError(LookupError):
  """The target is not an artifact this metadata store knows."""


@dataclasses.dataclass
class ArtifactNode:
  id: int
  type: str
  uri: str
  properties: Dict[str, Any]
  producer: Optional[int] = None        # the execution that made it, when expanded
  from_run: Optional[str] = None        # the earlier run that made it, when not expanded


@dataclasses.dataclass
class ExecutionNode:
  id: int
  node: str
  run: Optional[str]
  state: str
  started: str                          # UTC, ISO 8601
  seconds: float
  properties: Dict[str, Any]
  inputs: List[Tuple[str, int]]         # (input key, artifact id), in key order


@dataclasses.dataclass
class Lineage:
  target: str
  root: int
  artifacts: Dict[int, ArtifactNode]
  executions: Dict[int, ExecutionNode]

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def trace(metadata_path: str, pipeline_name: str, target: str) -> Lineage:
  """The lineage of the artifact at `target` (a path or URI) in the MLMD store.

  Raises:
    LineageError: no artifact has that URI, pushed destination or published path.
  """
  try:
    store = run_summary.open_store(metadata_path)
  except run_summary.StoreError as error:
    raise LineageError(str(error)) from None
  helper = run_summary.Store(store)
  root = _find(store, target)
  root_producer = _producer(store, root.id, None)
  root_run = _run_of(store, root_producer) if root_producer is not None else None

  lineage = Lineage(target, root.id, {}, {})
  pending = [root]
  while pending:
    artifact = pending.pop()
    if artifact.id in lineage.artifacts:
      continue
    node = ArtifactNode(artifact.id, artifact.type, artifact.uri, _properties(artifact))
    lineage.artifacts[artifact.id] = node
    producer = _producer(store, artifact.id, root_run)
    if producer is None:
      continue
    run = _run_of(store, producer)
    if root_run is not None and run != root_run:
      node.from_run = run
      continue
    node.producer = producer
    if producer in lineage.executions:
      continue
    execution = store.get_executions_by_id([producer])[0]
    inputs = sorted((_key(event), event.artifact_id)
                    for event in store.get_events_by_execution_ids([producer])
                    if event.type in _CONSUMED)
    lineage.executions[producer] = ExecutionNode(
        producer, helper.node_id(producer, pipeline_name) or execution.type, run,
        run_summary.STATES.get(execution.last_known_state, 'unknown'),
        _utc(execution.create_time_since_epoch),
        max(0.0, (execution.last_update_time_since_epoch -
                  execution.create_time_since_epoch) / 1000.0),
        _properties(execution), inputs)
    ids = [artifact_id for _, artifact_id in inputs if artifact_id not in lineage.artifacts]
    pending.extend(store.get_artifacts_by_id(ids) if ids else [])
  return lineage


def _find(store: metadata_store.MetadataStore, target: str) -> metadata_store_pb2.Artifact:
  """The newest artifact whose URI, or whose pushed or published location, is `target`."""
  wanted = {target.rstrip('/')}
  if '://' not in target:
    wanted.add(os.path.abspath(target))
  found = [a for a in store.get_artifacts() if a.uri.rstrip('/') in wanted or any(
      str(run_summary.custom(a, name) or '').rstrip('/') in wanted
      for name in _DESTINATION_PROPERTIES)]
  if not found:
    raise LineageError(f'no artifact in the metadata store is at {target}; pass a serving '
                       'version folder, a TF Hub module folder or an artifact URI')
  return max(found, key=lambda a: (a.create_time_since_epoch, a.id))


def _producer(store: metadata_store.MetadataStore, artifact_id: int,
              run: Optional[str]) -> Optional[int]:
  """The execution that output the artifact: in `run` if one did, else the first one."""
  producers = sorted(event.execution_id for event in store.get_events_by_artifact_ids(
      [artifact_id]) if event.type in _PRODUCED)
  if not producers:
    return None
  in_run = [e for e in producers if run is not None and _run_of(store, e) == run]
  return (in_run or producers)[0]


def _run_of(store: metadata_store.MetadataStore, execution_id: int) -> Optional[str]:
  for context in store.get_contexts_by_execution(execution_id):
    if context.type == 'pipeline_run':
      return context.name
  return None


def _key(event: metadata_store_pb2.Event) -> str:
  return event.path.steps[0].key if event.path.steps else ''


def _properties(item) -> Dict[str, Any]:
  values = {}
  for properties in (item.properties, item.custom_properties):
    for name in properties:
      value = properties[name]
      kind = value.WhichOneof('value')
      if kind in ('int_value', 'double_value', 'string_value', 'bool_value'):
        values[name] = getattr(value, kind)
  return values


def _utc(millis: int) -> str:
  moment = datetime.datetime.fromtimestamp(millis / 1000.0, datetime.timezone.utc)
  return moment.strftime('%Y-%m-%d %H:%M:%S UTC')


def format_lineage(lineage: Lineage) -> str:
  """The lineage as an indented tree: each artifact under the input key it was consumed by.

  An artifact or execution reached a second time is named, not repeated.
  """
  root = lineage.artifacts[lineage.root]
  run = lineage.executions[root.producer].run if root.producer is not None else None
  lines: List[str] = [f'Lineage of {lineage.target}' + (f' (run {run})' if run else '')]
  shown_artifacts, shown_executions = set(), set()

  def add(depth: int, text: str) -> None:
    lines.extend(textwrap.wrap(text, width=_WIDTH, initial_indent='  ' * depth,
                               subsequent_indent='  ' * (depth + 2), break_long_words=False,
                               break_on_hyphens=False))

  def artifact(artifact_id: int, key: str, depth: int) -> None:
    node = lineage.artifacts[artifact_id]
    label = f'{key}: ' if key else ''
    if artifact_id in shown_artifacts:
      add(depth, f'{label}{node.type} {node.id} (shown above)')
      return
    shown_artifacts.add(artifact_id)
    add(depth, f'{label}{node.type} {node.id}  {node.uri}')
    details = _short(node.properties, _SHOWN_ARTIFACT_PROPERTIES)
    if details:
      add(depth + 1, details)
    if node.from_run is not None:
      add(depth + 1, f'made in an earlier run, {node.from_run}')
    if node.producer is None:
      return
    execution = lineage.executions[node.producer]
    if execution.id in shown_executions:
      add(depth + 1, f'made by {execution.node} (execution {execution.id}, shown above)')
      return
    shown_executions.add(execution.id)
    add(depth + 1, f'made by {execution.node} (execution {execution.id}, {execution.state}, '
                   f'started {execution.started}, {execution.seconds:.1f} s)')
    settings = _short(execution.properties, sorted(execution.properties))
    if settings:
      add(depth + 2, settings)
    for input_key, input_id in execution.inputs:
      artifact(input_id, input_key, depth + 2)

  artifact(lineage.root, '', 0)
  return '\n'.join(lines)


def _short(properties: Dict[str, Any], names) -> str:
  """`name=value` for the named properties, each value on one line and cut to a readable size."""
  shown = []
  for name in names:
    if name not in properties:
      continue
    value = properties[name]
    if isinstance(value, str):
      try:
        value = json.dumps(json.loads(value), separators=(',', ':'), sort_keys=True)
      except ValueError:
        pass
      if len(value) > _SHOWN_VALUE_CHARS:
        value = value[:_SHOWN_VALUE_CHARS - 1] + '…'
    shown.append(f'{name}={value}')
  return ' '.join(shown)
