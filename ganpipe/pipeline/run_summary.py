"""What the latest run did, read back from ML Metadata: per-component status and time, metrics,
blessings and where each model went."""

import dataclasses
import json
import os
import re
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ganpipe.pipeline import drift_summary
from ganpipe.pipeline import evaluation_results

STATES = {
    metadata_store_pb2.Execution.COMPLETE: 'complete',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'FAILED',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.NEW: 'new',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
}
STATES_BY_NAME = {name: state for state, name in STATES.items()}


@dataclasses.dataclass
class ComponentRun:
  node_id: str
  status: str          # complete, cached, FAILED, ..., or "not run"
  seconds: Optional[float] = None


@dataclasses.dataclass
class ModelResult:
  name: str
  metric_name: str
  metric: Optional[float] = None
  example_count: Optional[int] = None
  blessed: Optional[bool] = None
  reason: str = ''
  # Infra validation in a sandboxed model server: passed or not, and why.
  infra_validated: Optional[bool] = None
  infra_reason: str = ''
  pushed_to: Optional[str] = None
  not_pushed_reason: str = ''
  # Not pushed because the newest version already serves this very model.
  push_unchanged: bool = False
  # The TF Hub module published from this model, or why it was not.
  published_to: Optional[str] = None
  not_published_reason: str = ''
  publish_unchanged: bool = False
  # Further figures worth a line, e.g. the real-data reference of a generator's metrics.
  details: Dict[str, float] = dataclasses.field(default_factory=dict)
  # Why the headline metric is not shown as a number (too few images for it to mean anything).
  metric_note: str = ''


@dataclasses.dataclass
class IngestionResult:
  accepted_by_split: Dict[str, int]
  rejected_by_reason: Dict[str, int]
  warnings: int  # other than the empty class folders, which are named
  report_path: str
  skipped_files: int = 0  # not named as images, so not read
  empty_classes: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunSummary:
  pipeline_name: str
  run_id: str
  components: List[ComponentRun]
  models: List[ModelResult] = dataclasses.field(default_factory=list)
  ingestion: Optional[IngestionResult] = None
  drift: Optional[drift_summary.DriftResult] = None
  # The spans of the Examples that Transform, and so the Trainers, read in this run.
  train_spans: List[int] = dataclasses.field(default_factory=list)

  @property
  def failed(self) -> List[str]:
    return [c.node_id for c in self.components if c.status == 'FAILED']

  @property
  def cached(self) -> List[str]:
    return [c.node_id for c in self.components if c.status == 'cached']

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2)


class StoreError(LookupError):
  """The metadata path is not an ML Metadata store that can be read."""


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """The MLMD SQLite store at `metadata_path`, opened read-only: reading never changes it.

  Raises:
    StoreError: there is no file there, or it is not an ML Metadata store.
  """
  if not os.path.isfile(metadata_path):
    raise StoreError(f'no metadata store at {metadata_path}')
  # What tfx/orchestration/metadata.py's sqlite_metadata_connection_config builds, read-only;
  # importing that module imports TensorFlow, which cost `status` half a minute.
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  try:
    return metadata_store.MetadataStore(config)
  except RuntimeError as error:  # how MLMD reports a file that is not its database
    # "Error when executing query: file is not a database query: CREATE TABLE ...": read-only,
    # MLMD's attempt to create its tables fails instead of writing them into the file.
    reason = re.search(r'query: (.*?) query:', str(error))
    reason = reason.group(1) if reason else str(error)[:200]
    if 'readonly' in reason:
      reason = 'it holds no ML Metadata tables'
    raise StoreError(f'{metadata_path} is not an ML Metadata store: {reason}') from None


class Store:
  """Small read-only helpers over an MLMD store."""

  def __init__(self, store: metadata_store.MetadataStore):
    self.store = store

  def node_id(self, execution_id: int, pipeline_name: str) -> Optional[str]:
    for context in self.store.get_contexts_by_execution(execution_id):
      if context.name.startswith(pipeline_name + '.'):
        return context.name[len(pipeline_name) + 1:]
    return None

  def outputs(self, execution_id: int) -> Dict[str, metadata_store_pb2.Artifact]:
    """Output key -> artifact of one execution."""
    events = self.store.get_events_by_execution_ids([execution_id])
    wanted = {}
    for event in events:
      if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
        key = event.path.steps[0].key if event.path.steps else ''
        wanted[event.artifact_id] = key
    artifacts = self.store.get_artifacts_by_id(list(wanted)) if wanted else []
    return {wanted[a.id]: a for a in artifacts}

  def inputs(self, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """Input key -> the artifacts of one execution (a window of spans is several)."""
    wanted = {}
    for event in self.store.get_events_by_execution_ids([execution_id]):
      if event.type == metadata_store_pb2.Event.INPUT and event.path.steps:
        wanted[event.artifact_id] = event.path.steps[0].key
    found: Dict[str, List[metadata_store_pb2.Artifact]] = {}
    for artifact in self.store.get_artifacts_by_id(list(wanted)) if wanted else []:
      found.setdefault(wanted[artifact.id], []).append(artifact)
    return found


def custom(artifact: metadata_store_pb2.Artifact, name: str):
  value = artifact.custom_properties.get(name)
  if value is None:
    return None
  return getattr(value, value.WhichOneof('value'))


def collect(metadata_path: str, pipeline_name: str, node_ids: List[str],
            evaluated_models: Dict[str, Dict[str, str]],
            ingestion_node: str, drift_node: str = '', gate_node: str = '',
            transform_node: str = '', baseline_node: str = '') -> Optional[RunSummary]:
  """Summarises the latest run of `pipeline_name`.

  Args:
    metadata_path: the MLMD SQLite file.
    pipeline_name: the pipeline's name.
    node_ids: every node of the pipeline, in order; nodes without an execution are "not run".
    evaluated_models: model name -> {'evaluator': id, 'pusher': id, 'metric': metric name}.
    ingestion_node: the id of the ImageExampleGen whose ingestion report to show.
    drift_node: the id of the DriftValidator whose figures to show.
    gate_node: the id of the validation gate, which stops a run on drift unless allowed.
    transform_node: the id of the Transform whose input spans to show.
    baseline_node: the id of the drift baseline's resolver.

  Returns:
    The summary, or None when the store holds no run of this pipeline.
  """
  store = Store(open_store(metadata_path))
  runs = [c for c in store.store.get_contexts_by_type('pipeline_run')]
  pipeline_context = store.store.get_context_by_type_and_name('pipeline', pipeline_name)
  if pipeline_context is None or not runs:
    return None
  pipeline_executions = {e.id for e in store.store.get_executions_by_context(pipeline_context.id)}
  runs = [r for r in runs
          if any(e.id in pipeline_executions for e in store.store.get_executions_by_context(r.id))]
  if not runs:
    return None
  latest = max(runs, key=lambda r: (r.create_time_since_epoch, r.id))

  by_node: Dict[str, metadata_store_pb2.Execution] = {}
  for execution in store.store.get_executions_by_context(latest.id):
    node = store.node_id(execution.id, pipeline_name)
    if node:
      by_node[node] = execution

  components = []
  for node in node_ids:
    execution = by_node.get(node)
    if execution is None:
      components.append(ComponentRun(node, 'not run'))
      continue
    status = STATES.get(execution.last_known_state, 'unknown')
    seconds = None
    if status not in ('cached',):
      seconds = max(0.0, (execution.last_update_time_since_epoch -
                          execution.create_time_since_epoch) / 1000.0)
    components.append(ComponentRun(node, status, seconds))

  summary = RunSummary(pipeline_name, latest.name, components,
                       ingestion=_ingestion_result(store, by_node.get(ingestion_node)))
  for model_name, ids in evaluated_models.items():
    summary.models.append(_model_result(store, by_node, model_name, ids))
  summary.drift = _drift_result(store, by_node.get(drift_node), by_node.get(gate_node))
  baseline = by_node.get(baseline_node)
  if summary.drift and baseline and baseline.last_known_state == STATES_BY_NAME['FAILED']:
    summary.drift.baseline_failed = True
  transform = by_node.get(transform_node)
  if transform is not None:
    # ImageExampleGen writes the span as a property and, as TFX's driver does, a custom one.
    summary.train_spans = sorted(
        a.properties['span'].int_value if 'span' in a.properties else custom(a, 'span') or 0
        for a in store.inputs(transform.id).get('examples', []))
  return summary


def _drift_result(store: Store, execution, gate) -> Optional[drift_summary.DriftResult]:
  if execution is None:
    return None
  artifact = store.outputs(execution.id).get('drift_report')
  figures = custom(artifact, 'drift') if artifact is not None else None
  if not figures:
    return None
  found = json.loads(figures)
  allowed = gate is not None and custom(gate, 'allow_drift') == 1
  stopped = gate is not None and gate.last_known_state == metadata_store_pb2.Execution.FAILED
  return drift_summary.DriftResult(found['span'], found['baseline_span'], found['measurements'],
                     found['drifted'], allowed=allowed and bool(found['drifted']),
                     stopped=stopped and bool(found['drifted']) and not allowed)


def _ingestion_result(store: Store, execution) -> Optional[IngestionResult]:
  if execution is None:
    return None
  artifact = store.outputs(execution.id).get('ingestion_report')
  if artifact is None:
    return None
  from ganpipe.components.image_example_gen import report  # pylint: disable=import-outside-toplevel
  loaded = report.load(artifact.uri)
  if loaded is None:
    return None
  empty = loaded.get('empty_classes', [])
  # Reports of earlier runs have no `empty_classes`; their empty classes stay among the warnings.
  warnings = [w for w in loaded['warnings']
              if not (empty and w['reason'] == 'empty_class_folder')]
  return IngestionResult(loaded['accepted_by_split'], loaded['rejected_by_reason'],
                         len(warnings), os.path.join(artifact.uri, report.REPORT_FILE),
                         loaded.get('skipped_files', 0), empty)


def _model_result(store: Store, by_node, model_name: str, ids: Dict[str, str]) -> ModelResult:
  result = ModelResult(model_name, ids['metric'])
  evaluator = by_node.get(ids['evaluator'])
  if evaluator is None or evaluator.last_known_state not in (
      metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED):
    result.reason = 'not evaluated'
    return result
  outputs = store.outputs(evaluator.id)
  if 'blessing' in outputs:
    result.blessed = custom(outputs['blessing'], 'blessed') == 1
  if 'evaluation' in outputs:
    read = (evaluation_results.read_generator_metrics if ids.get('kind') == 'generator'
            else evaluation_results.read_tfma)
    figures = read(outputs['evaluation'].uri, result.metric_name)
    result.metric, result.example_count = figures.metric, figures.example_count
    result.reason, result.details = figures.reason, figures.details
    result.metric_note = figures.metric_note
  if 'blessing' in outputs and custom(outputs['blessing'], 'reason'):
    result.reason = custom(outputs['blessing'], 'reason')
  infra = by_node.get(ids.get('infra_validator', ''))
  if infra is not None:
    infra_blessing = store.outputs(infra.id).get('blessing')
    if infra_blessing is not None:
      result.infra_validated = custom(infra_blessing, 'blessed') == 1
      result.infra_reason = custom(infra_blessing, 'reason') or ''
  pusher = by_node.get(ids['pusher'])
  if pusher is not None:
    pushed = store.outputs(pusher.id).get('pushed_model')
    if pushed is not None and custom(pushed, 'pushed') == 1:
      result.pushed_to = custom(pushed, 'pushed_destination')
    elif pushed is not None:
      result.not_pushed_reason = custom(pushed, 'reason') or 'not blessed'
      result.push_unchanged = custom(pushed, 'unchanged') == 1
  publisher = by_node.get(ids.get('publisher', ''))
  if publisher is not None:
    module = store.outputs(publisher.id).get('published_module')
    if module is not None and custom(module, 'published') == 1:
      result.published_to = custom(module, 'published_path')
    elif module is not None:
      result.not_published_reason = custom(module, 'reason') or 'not blessed'
      result.publish_unchanged = custom(module, 'unchanged') == 1
  return result


def format_summary(summary: RunSummary) -> str:
  """A short, human-readable table."""
  lines = [f'Run {summary.run_id} of pipeline {summary.pipeline_name!r}']
  width = max(len(c.node_id) for c in summary.components) + 2
  for c in summary.components:
    time = f'{c.seconds:6.1f} s' if c.seconds is not None else ''
    lines.append(f'  {c.node_id:<{width}}{c.status:<10}{time}')
  if summary.cached:
    lines.append(f'  {len(summary.cached)} of {len(summary.components)} components were served '
                 'from the cache.')
  if summary.ingestion:
    lines.append(_format_ingestion(summary.ingestion))
  if summary.drift:
    lines.append(drift_summary.format_drift(summary.drift))
  if summary.train_spans:
    lines.append('training window: span' + 's' * (len(summary.train_spans) > 1) + ' ' +
                 ', '.join(map(str, summary.train_spans)))
  for model in summary.models:
    lines.append(_format_model(model))
  return '\n'.join(lines)


def _format_ingestion(ingestion: IngestionResult) -> str:
  splits = ', '.join(f'{split} {count}' for split, count in ingestion.accepted_by_split.items())
  line = f'data: {sum(ingestion.accepted_by_split.values())} images ({splits}); '
  rejected = sum(ingestion.rejected_by_reason.values())
  if rejected:
    reasons = ', '.join(f'{r} {n}' for r, n in ingestion.rejected_by_reason.items())
    line += f'{rejected} rejected ({reasons})'
  else:
    line += '0 rejected'
  if ingestion.skipped_files:
    line += f'; {ingestion.skipped_files} files skipped, not named as images'
  if ingestion.warnings:
    line += f'; {ingestion.warnings} warnings'
  if ingestion.empty_classes:
    line += ('\n  empty class folders, left out of the class map: ' +
             ', '.join(ingestion.empty_classes))
  if rejected or ingestion.warnings or ingestion.skipped_files or ingestion.empty_classes:
    line += f'\n  see {ingestion.report_path}'
  return line


def _format_model(model: ModelResult) -> str:
  if model.metric is None:
    return f'{model.name}: {model.reason or "no evaluation"}'
  count = f' on {model.example_count} eval examples' if model.example_count else ''
  verdict = {True: 'blessed', False: 'NOT blessed', None: 'no blessing'}[model.blessed]
  if model.metric_note:
    line = f'{model.name}: {model.metric_name} {model.metric_note}, {verdict}'
  else:
    line = f'{model.name}: {model.metric_name} {model.metric:.4f}{count}, {verdict}'
  if model.reason:
    line += f' ({model.reason})'
  if model.details:
    line += '\n  ' + ', '.join(f'{key} {value:.4f}' for key, value in model.details.items())
  if model.infra_validated is not None:
    line += ('\n  infra validation: ' + ('passed' if model.infra_validated else 'FAILED') +
             (f' ({model.infra_reason})' if model.infra_reason and not model.infra_validated
              else ''))
  if model.pushed_to:
    line += f'\n  pushed to {model.pushed_to}'
  elif model.push_unchanged:
    line += f'\n  unchanged, not pushed ({model.not_pushed_reason})'
  elif model.blessed or model.not_pushed_reason:
    line += f'\n  not pushed ({model.not_pushed_reason or "not blessed"})'
  if model.published_to:
    line += f'\n  published as a TF Hub module to {model.published_to}'
  elif model.publish_unchanged:
    line += f'\n  unchanged, not published to TF Hub ({model.not_published_reason})'
  elif model.not_published_reason:
    line += f'\n  not published to TF Hub ({model.not_published_reason})'
  return line
