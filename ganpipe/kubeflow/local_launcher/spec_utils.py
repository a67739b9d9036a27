"""Stateless helpers on a compiled PipelineSpec: task order, placeholders, values, filters."""

import json
import re
from typing import List, Mapping

from google.protobuf import json_format
from google.protobuf import struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
import yaml

_PLACEHOLDER = re.compile(r'\{\{\$(.*?)\}\}')
_INPUT_ARTIFACT = re.compile(r"^\.inputs\.artifacts\['([^']+)'\]\.(uri|metadata\['([^']+)'\])$")
_OUTPUT_ARTIFACT = re.compile(r"^\.outputs\.artifacts\['([^']+)'\]\.uri$")
_INPUT_PARAMETER = re.compile(r"^\.inputs\.parameters\['([^']+)'\]$")
_FILTER_CLAUSES = (
    ('schema_title', re.compile(r'^schema_title="([^"]*)"$')),
    ('state', re.compile(r'^state=(\w+)$')),
    ('name', re.compile(r'^name="([^"]*)"$')),
    ('number', re.compile(r'^metadata\.(\w+)\.number_value=(-?[0-9.eE+-]+)$')),
    ('string', re.compile(r'^metadata\.(\w+)\.string_value="([^"]*)"$')),
)


class SpecError(ValueError):
  """The compiled spec asks for something the KFP launcher could not do."""


def task_order(tasks: Mapping[str, pipeline_spec_pb2.PipelineTaskSpec]) -> List[str]:
  """The tasks in an order where each runs after all the tasks it depends on.

  Dependencies are `dependentTasks` plus the producers of the task's input artifacts and
  parameters, which KFP adds implicitly. Ties run in name order, so the order is stable.

  Raises:
    SpecError: on an unknown producer or a cycle.
  """
  needs = {name: set(upstream_tasks(task)) for name, task in tasks.items()}
  for name, upstream in needs.items():
    unknown = upstream - set(tasks)
    if unknown:
      raise SpecError(f'task {name} depends on unknown tasks {sorted(unknown)}')
  order: List[str] = []
  while len(order) < len(tasks):
    ready = sorted(n for n, up in needs.items() if n not in order and up <= set(order))
    if not ready:
      raise SpecError(f'dependency cycle among {sorted(set(tasks) - set(order))}')
    order.append(ready[0])
  return order


def upstream_tasks(task: pipeline_spec_pb2.PipelineTaskSpec) -> List[str]:
  """The tasks a task waits for: declared, and implied by its inputs."""
  upstream = list(task.dependent_tasks)
  upstream += [a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
               if a.WhichOneof('kind') == 'task_output_artifact']
  upstream += [p.task_output_parameter.producer_task for p in task.inputs.parameters.values()
               if p.WhichOneof('kind') == 'task_output_parameter']
  return list(dict.fromkeys(upstream))


def schema_title(artifact_type: pipeline_spec_pb2.ArtifactTypeSchema) -> str:
  if artifact_type.WhichOneof('kind') == 'schema_title':
    return artifact_type.schema_title
  return yaml.safe_load(artifact_type.instance_schema).get('title', '')


def substitute(text: str, executor_input: pipeline_spec_pb2.ExecutorInput) -> str:
  """Replaces KFP placeholders (`{{$}}`, `{{$.inputs.artifacts['x'].uri}}`, ...) in `text`.

  Raises:
    SpecError: for a placeholder this launcher does not know, or a missing input.
  """
  def replace(match):
    path = match.group(1)
    if not path:
      return json_format.MessageToJson(executor_input, indent=None)
    found = _INPUT_ARTIFACT.match(path)
    if found:
      artifacts = executor_input.inputs.artifacts[found.group(1)].artifacts
      if not artifacts:
        raise SpecError(f'{match.group(0)}: input {found.group(1)!r} has no artifact')
      if found.group(2) == 'uri':
        return artifacts[0].uri
      value = json_format.MessageToDict(artifacts[0].metadata).get(found.group(3))
      if value is None:
        raise SpecError(f'{match.group(0)}: no such metadata on {artifacts[0].name}')
      return _as_text(value)
    found = _OUTPUT_ARTIFACT.match(path)
    if found:
      return executor_input.outputs.artifacts[found.group(1)].artifacts[0].uri
    found = _INPUT_PARAMETER.match(path)
    if found:
      return _as_text(json_format.MessageToDict(
          executor_input.inputs.parameter_values[found.group(1)]))
    raise SpecError(f'unsupported placeholder {match.group(0)}')
  return _PLACEHOLDER.sub(replace, text)


def _as_text(value) -> str:
  """A JSON value as a placeholder's text: strings as they are, whole numbers without `.0`."""
  if isinstance(value, str):
    return value
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  return json.dumps(value)


def to_struct_value(value: pipeline_spec_pb2.Value) -> struct_pb2.Value:
  """A deprecated typed Value (as 2.0.0 specs hold them) as a struct Value."""
  kind = value.WhichOneof('value')
  if kind is None:
    raise SpecError(f'a parameter value is empty: {value}')
  if kind == 'string_value':
    return struct_pb2.Value(string_value=value.string_value)
  return struct_pb2.Value(number_value=float(getattr(value, kind)))


def declared_type(component: pipeline_spec_pb2.ComponentSpec, name: str) -> int:
  """The parameter's PrimitiveType (INT, DOUBLE, STRING), or 0 when it is not declared."""
  declared = component.input_definitions.parameters.get(name)
  if declared is None:
    return 0
  if declared.type:
    return declared.type
  return {pipeline_spec_pb2.ParameterType.NUMBER_INTEGER: pipeline_spec_pb2.PrimitiveType.INT,
          pipeline_spec_pb2.ParameterType.NUMBER_DOUBLE: pipeline_spec_pb2.PrimitiveType.DOUBLE,
          }.get(declared.parameter_type, 0)


def to_legacy_value(value: struct_pb2.Value, declared: int) -> pipeline_spec_pb2.Value:
  """A struct Value as the deprecated typed Value, which TFX reads from 2.0.0 specs."""
  kind = value.WhichOneof('kind')
  if kind == 'string_value':
    return pipeline_spec_pb2.Value(string_value=value.string_value)
  if kind != 'number_value':
    return pipeline_spec_pb2.Value(string_value=json_format.MessageToJson(value, indent=None))
  number = value.number_value
  if declared == pipeline_spec_pb2.PrimitiveType.DOUBLE or (
      declared != pipeline_spec_pb2.PrimitiveType.INT and not number.is_integer()):
    return pipeline_spec_pb2.Value(double_value=number)
  return pipeline_spec_pb2.Value(int_value=int(number))


def matches_filter(query: str, artifact: pipeline_spec_pb2.RuntimeArtifact) -> bool:
  """Evaluates a resolver's MLMD filter (clauses joined by AND) on one live artifact."""
  metadata = json_format.MessageToDict(artifact.metadata)
  for clause in query.split(' AND '):
    clause = clause.strip()
    for kind, pattern in _FILTER_CLAUSES:
      found = pattern.match(clause)
      if found:
        break
    else:
      raise SpecError(f'unsupported resolver filter clause {clause!r} in {query!r}')
    if kind == 'schema_title' and schema_title(artifact.type) != found.group(1):
      return False
    if kind == 'state' and found.group(1) != 'LIVE':
      return False  # Every artifact this launcher knows of is live.
    if kind == 'name' and artifact.name != found.group(1):
      return False
    if kind == 'number' and metadata.get(found.group(1)) != float(found.group(2)):
      return False
    if kind == 'string' and metadata.get(found.group(1)) != found.group(2):
      return False
  return True
