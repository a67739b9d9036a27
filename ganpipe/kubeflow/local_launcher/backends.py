"""What a KFP backend does around each task: the ExecutorInput it builds, what it records after.

`KfpBackend` follows the open-source Kubeflow Pipelines backend at release 2.17.0; each rule
names the file of kubeflow/pipelines that it comes from. `VertexBackend` follows Vertex AI
Pipelines, which runs resolver tasks and the ExampleGen driver hook, and passes artifacts with
their types. The launcher (`launcher.py`) schedules the tasks and runs their processes.
"""

import dataclasses
import json
import re
import uuid
from typing import Dict, List, Mapping, Optional

from google.protobuf import json_format
from google.protobuf import struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from ganpipe.kubeflow.local_launcher import job_loading
from ganpipe.kubeflow.local_launcher import spec_utils

SpecError = spec_utils.SpecError
ParameterType = pipeline_spec_pb2.ParameterType


@dataclasses.dataclass
class Recorded:
  """An output artifact as the backend's metadata store holds it: an id and the artifact."""
  id: int
  artifact: pipeline_spec_pb2.RuntimeArtifact


class VertexBackend:
  """Vertex AI Pipelines: a PipelineJob with its runtime config; artifacts keep their types."""

  name = 'vertex'
  runs_pre_cache_check = True
  runs_resolvers = True
  output_file_name = 'executor_output.json'

  def __init__(self, job: job_loading.Job, run_id: str,
               arguments: Optional[Mapping[str, object]] = None):
    self._spec = json_format.ParseDict(job.spec, pipeline_spec_pb2.PipelineSpec())
    self._runtime = json_format.ParseDict(job.runtime_config,
                                          pipeline_spec_pb2.PipelineJob.RuntimeConfig())
    self._default_root = job.spec.get('defaultPipelineRoot', '')
    self._arguments = dict(arguments or {})
    self.run_id = run_id

  @property
  def spec(self) -> pipeline_spec_pb2.PipelineSpec:
    return self._spec

  def run_root(self) -> str:
    root = self._runtime.gcs_output_directory or self._default_root
    if not root:
      raise SpecError('the job names no pipeline root (runtimeConfig.gcsOutputDirectory)')
    return f'{root.rstrip("/")}/{self.run_id}'

  def root_parameter(self, name: str) -> Optional[struct_pb2.Value]:
    if name in self._arguments:
      return json_format.ParseDict(self._arguments[name], struct_pb2.Value())
    if name in self._runtime.parameter_values:
      return self._runtime.parameter_values[name]
    if name in self._runtime.parameters:
      return spec_utils.to_struct_value(self._runtime.parameters[name])
    definition = self._spec.root.input_definitions.parameters.get(name)
    if definition is not None and definition.HasField('default_value'):
      return definition.default_value
    return None

  def input_parameter(self, task: str, name: str,
                      source: pipeline_spec_pb2.TaskInputsSpec.InputParameterSpec
                      ) -> Optional[struct_pb2.Value]:
    kind = source.WhichOneof('kind')
    if kind == 'runtime_value':
      constant = source.runtime_value
      return (spec_utils.to_struct_value(constant.constant_value)
              if constant.HasField('constant_value') else constant.constant)
    if kind == 'component_input_parameter':
      value = self.root_parameter(source.component_input_parameter)
      if value is None:
        raise SpecError(f'pipeline parameter {source.component_input_parameter!r} has no value')
      return value
    raise SpecError(f'task {task}: parameter {name} comes from {kind}, not supported')

  def set_parameters(self, executor_input: pipeline_spec_pb2.ExecutorInput,
                     component: pipeline_spec_pb2.ComponentSpec,
                     values: Mapping[str, struct_pb2.Value]) -> None:
    # A 2.0.0 spec's executors read the typed `parameters`; 2.1.0's read `parameterValues`.
    for name, value in values.items():
      executor_input.inputs.parameter_values[name].CopyFrom(value)
      executor_input.inputs.parameters[name].CopyFrom(
          spec_utils.to_legacy_value(value, spec_utils.declared_type(component, name)))

  def input_artifact(self, recorded: Recorded) -> pipeline_spec_pb2.RuntimeArtifact:
    return recorded.artifact

  def output_artifacts(self, task: str, component: pipeline_spec_pb2.ComponentSpec
                       ) -> Dict[str, pipeline_spec_pb2.RuntimeArtifact]:
    task_root = f'{self.run_root()}/{task}'
    return {key: pipeline_spec_pb2.RuntimeArtifact(
        name=f'{self.run_id}/{task}/{key}', type=definition.artifact_type,
        uri=f'{task_root}/{key}')
            for key, definition in component.output_definitions.artifacts.items()}

  def output_file(self, task: str, outputs: Mapping[str, pipeline_spec_pb2.RuntimeArtifact]
                  ) -> str:
    return f'{self.run_root()}/{task}/{self.output_file_name}'

  @staticmethod
  def parse_executor_output(text: str) -> pipeline_spec_pb2.ExecutorOutput:
    return json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput(),
                             ignore_unknown_fields=True)

  def recorded_metadata(self, key: str, metadata: struct_pb2.Struct) -> struct_pb2.Struct:
    return metadata


# The run's pipeline root when the run names none and no kfp-launcher ConfigMap sets one
# (defaultPipelineRoot in backend/src/v2/config/env.go).
KFP_DEFAULT_ROOT = 'minio://mlpipeline/v2/artifacts'
# objectstore.ParseBucketConfig (backend/src/v2/objectstore/config.go), then GetStoreSessionInfo
# (backend/src/v2/config/env.go), which takes the minio, s3 and gs providers only.
_BUCKET = re.compile(r'(^[a-z][a-z0-9]+:///?)([^/?]+)(/[^?]*)?(\?.+)?$')
_ROOT_PROVIDERS = ('gs://', 's3://', 'minio://')
# ValidatePipelineName (backend/src/apiserver/common/utils.go).
_PIPELINE_NAME = re.compile(r'^[a-z0-9][a-z0-9-]{0,127}$')


class KfpBackend(VertexBackend):
  """The open-source KFP backend, 2.17.0: its upload checks, driver and launcher."""

  name = 'kfp'
  # Nothing in the OSS backend reads a container's lifecycle.preCacheCheck.
  runs_pre_cache_check = False
  runs_resolvers = False
  # provisionOutputs (backend/src/v2/driver/driver.go): `<local task root>/output_metadata.json`.
  output_file_name = 'output_metadata.json'

  def __init__(self, job: job_loading.Job, run_id: str,
               arguments: Optional[Mapping[str, object]] = None,
               pipeline_root: Optional[str] = None):
    check_upload(job.documents)
    super().__init__(job, run_id, arguments)
    # A run's pipeline root is its own: the spec's defaultPipelineRoot is never read (RootDAG in
    # backend/src/v2/driver/root_dag.go takes runtimeConfig.gcsOutputDirectory, else the
    # ConfigMap's default).
    self._root = pipeline_root or KFP_DEFAULT_ROOT
    check_run(self._spec, self._arguments, self._root)
    self._task_roots: Dict[str, str] = {}

  def run_root(self) -> str:
    # GetPipeline (backend/src/v2/metadata/client.go): `<root>/<pipelineInfo.name>/<run id>`.
    return f'{self._root.rstrip("/")}/{self._spec.pipeline_info.name}/{self.run_id}'

  def root_parameter(self, name: str) -> Optional[struct_pb2.Value]:
    if name in self._arguments:
      return json_format.ParseDict(self._arguments[name], struct_pb2.Value())
    definition = self._spec.root.input_definitions.parameters.get(name)
    if definition is not None and definition.HasField('default_value'):
      return definition.default_value
    return None

  def input_parameter(self, task, name, source):
    # resolveInputParameter (backend/src/v2/driver/resolve.go): `runtimeValue.constant`; the
    # deprecated `constantValue` falls to its "not implemented" default.
    if source.WhichOneof('kind') == 'runtime_value' and source.runtime_value.HasField(
        'constant_value'):
      raise SpecError(f'task {task}: resolving input parameter {name}: param runtime value spec '
                      'of type *pipelinespec.ValueOrRuntimeParameter_ConstantValue not '
                      'implemented')
    return super().input_parameter(task, name, source)

  def set_parameters(self, executor_input, component, values) -> None:
    definitions = component.input_definitions.parameters
    for name, value in values.items():
      executor_input.inputs.parameter_values[name].CopyFrom(
          _typed(name, value, definitions[name].parameter_type if name in definitions else 0))
    # addDefaultParams (backend/src/v2/component/launcher_v2.go): the launcher adds a declared
    # default for each input the driver left out, before it substitutes `{{$}}`.
    for name, definition in definitions.items():
      if name not in executor_input.inputs.parameter_values and definition.HasField(
          'default_value'):
        executor_input.inputs.parameter_values[name].CopyFrom(definition.default_value)

  def input_artifact(self, recorded: Recorded) -> pipeline_spec_pb2.RuntimeArtifact:
    # GetOutputArtifactsByExecutionId (backend/src/v2/metadata/client.go) reads it back from ML
    # Metadata with `Schema: ""`; ToRuntimeArtifact names it by its id and types it by that
    # empty instance schema.
    artifact = pipeline_spec_pb2.RuntimeArtifact(name=str(recorded.id), uri=recorded.artifact.uri)
    artifact.type.instance_schema = ''
    artifact.metadata.CopyFrom(recorded.artifact.metadata)
    return artifact

  def output_artifacts(self, task, component):
    # provisionOutputs (backend/src/v2/driver/driver.go): a new folder per execution,
    # `<run root>/<task>/<uuid>/<output key>`, typed as the component declares.
    task_root = self._task_roots[task] = f'{self.run_root()}/{task}/{uuid.uuid4()}'
    return {key: pipeline_spec_pb2.RuntimeArtifact(
        name=key, type=definition.artifact_type, uri=f'{task_root}/{key}')
            for key, definition in component.output_definitions.artifacts.items()}

  def output_file(self, task, outputs) -> str:
    # LocalPathForURI (backend/src/v2/component/launcher_v2.go): gs://b/k is /gcs/b/k in a pod.
    remote = self._task_roots[task]
    for scheme, path in job_loading.LAUNCHER_PATHS.items():
      if remote.startswith(scheme):
        return f'{path}{remote[len(scheme):]}/{self.output_file_name}'
    raise SpecError(f'unsupported storage scheme in {remote}')

  @staticmethod
  def parse_executor_output(text: str) -> pipeline_spec_pb2.ExecutorOutput:
    # getExecutorOutputFile (backend/src/v2/component/launcher_v2.go) parses strictly.
    try:
      return json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())
    except json_format.ParseError as error:
      raise SpecError(f'failed to unmarshall ExecutorOutput: {error}') from None

  def recorded_metadata(self, key: str, metadata: struct_pb2.Struct) -> struct_pb2.Struct:
    # RecordArtifact (backend/src/v2/metadata/client.go) keeps the metadata as MLMD custom
    # properties, and adds `display_name` and `store_session_info`; read back, bools are
    # numbers and lists and structs come wrapped (converter.go).
    recorded = struct_pb2.Struct()
    for name, value in json_format.MessageToDict(metadata).items():
      recorded.update({name: _as_mlmd_value(name, value)})
    recorded.update({'display_name': key, 'store_session_info': json.dumps(
        {'Provider': self._root.split(':', 1)[0], 'Params': {'fromEnv': 'true'}})})
    return recorded


def _as_mlmd_value(name: str, value):
  if value is None:
    raise SpecError(f'metadata {name!r}: unknown/unsupported value type')
  if isinstance(value, bool):
    return int(value)
  if isinstance(value, list):
    return {'list': value}
  if isinstance(value, dict):
    return {'struct': value}
  return value


_KINDS = {ParameterType.NUMBER_INTEGER: 'number_value', ParameterType.NUMBER_DOUBLE: 'number_value',
          ParameterType.STRING: 'string_value', ParameterType.BOOLEAN: 'bool_value',
          ParameterType.LIST: 'list_value', ParameterType.STRUCT: 'struct_value'}


# What run creation says of an argument of the wrong type (validatePipelineJobInputs).
_REQUIRED = {
    ParameterType.NUMBER_DOUBLE: 'double or integer, but the parameter value is not of number '
                                 'value type',
    ParameterType.NUMBER_INTEGER: 'double or integer, but the parameter value is not of number '
                                  'value type',
    ParameterType.STRING: 'string, but the input parameter is not of string value type',
    ParameterType.BOOLEAN: 'bool, but the input parameter is not of bool value type',
    ParameterType.LIST: 'list, but the input parameter is not of list value type',
    ParameterType.STRUCT: 'struct, but the input parameter is not of struct value type',
}


def _check_kind(name: str, value: struct_pb2.Value, declared: int) -> struct_pb2.Value:
  kind = value.WhichOneof('kind')
  if kind != _KINDS.get(declared):
    raise SpecError(f'input parameter {name!r} type mismatch: expect '
                    f'{ParameterType.ParameterTypeEnum.Name(declared)}, got {kind}')
  return value


def _typed(name: str, value: struct_pb2.Value, declared: int) -> struct_pb2.Value:
  """handleParamTypeValidationAndConversion (backend/src/v2/driver/resolve.go): a STRING input
  takes any value as its text; any other type must be given as that type."""
  kind = value.WhichOneof('kind')
  if declared == ParameterType.STRING and kind != 'string_value':
    text = json_format.MessageToJson(value, indent=None)
    if kind == 'number_value':
      number = value.number_value
      text = str(int(number)) if number.is_integer() else repr(number)
    elif kind == 'bool_value':
      text = 'true' if value.bool_value else 'false'
    return struct_pb2.Value(string_value=text)
  return _check_kind(name, value, declared)


def check_upload(documents: List[dict]) -> None:
  """The backend's checks when a package is uploaded (backend/src/apiserver/template/).

  Raises:
    SpecError: what the backend would refuse, in its words.
  """
  specs = []
  for document in documents:
    try:
      # isPipelineSpec (template.go): strict protojson, with a name and a root.
      spec = json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError:
      continue
    if spec.pipeline_info.name and spec.HasField('root'):
      specs.append(spec)
  if not specs:
    raise SpecError('unknown template format: no document is a pipeline spec')
  if len(specs) > 1:
    raise SpecError('multiple pipeline specs provided')
  spec = specs[0]
  # NewV2SpecTemplate (v2_template.go).
  if spec.schema_version != '2.1.0':
    raise SpecError(f'KFP only supports schema version 2.1.0, but the pipeline spec has version '
                    f'{spec.schema_version}')
  if not _PIPELINE_NAME.match(spec.pipeline_info.name):
    raise SpecError("pipeline's name must contain only lowercase alphanumeric characters or '-' "
                    'and must start with alphanumeric characters')


def check_run(spec: pipeline_spec_pb2.PipelineSpec, arguments: Mapping[str, object],
              pipeline_root: str) -> None:
  """The backend's checks when a run is created, and its root DAG driver's.

  Raises:
    SpecError: what the backend would refuse, in its words.
  """
  # The compiler visits every component (dfs in backend/src/v2/compiler/visitor.go).
  executors = json_format.MessageToDict(spec.deployment_spec).get('executors', {})
  for label, executor in sorted(executors.items()):
    if not {'container', 'importer'} & set(executor):
      raise SpecError(f'executor(label={label!r}): non-container and non-importer executor not '
                      'implemented')
  # validatePipelineJobInputs (backend/src/apiserver/template/v2_template.go).
  definitions = spec.root.input_definitions.parameters
  extra = sorted(set(arguments) - set(definitions))
  if extra:
    raise SpecError(f'parameter(s) provided are not required by pipeline: {", ".join(extra)}')
  for name, value in arguments.items():
    declared = definitions[name].parameter_type
    if not declared:
      raise SpecError(f'input parameter {name} has unspecified type')
    kind = json_format.ParseDict(value, struct_pb2.Value()).WhichOneof('kind')
    if kind != _KINDS.get(declared):
      raise SpecError(f'input parameter {name} requires type ' + _REQUIRED.get(
          declared, 'unknown'))
  for name, definition in definitions.items():
    if name not in arguments and not definition.is_optional and not definition.HasField(
        'default_value'):
      raise SpecError(f'parameter {name} is not optional, yet has neither default value nor '
                      'user provided value')
  match = _BUCKET.match(pipeline_root)
  if not match:
    raise SpecError('parse bucket config failed: unrecognized pipeline root format: '
                    f'{pipeline_root!r}')
  if match.group(1).rstrip('/') + '//' not in _ROOT_PROVIDERS:
    raise SpecError(f'parse bucket config failed: unsupported Cloud bucket: {pipeline_root!r}')
