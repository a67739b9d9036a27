"""Runs a compiled KFP v2 package on this machine, task by task, as a KFP backend would.

The backend (`backends.py`) decides what each task receives and what is recorded of it: the
open-source KFP backend (`kfp`, the default) or Vertex AI Pipelines (`vertex`). This module
schedules the tasks, runs each container command as a local process, and keeps what the
backend's metadata store would keep.
"""

from concurrent import futures
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from typing import Dict, List, Mapping, Optional, Sequence

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from ganpipe.kubeflow.local_launcher import backends
from ganpipe.kubeflow.local_launcher import job_loading
from ganpipe.kubeflow.local_launcher import spec_utils

# What ganpipe/kubeflow/Dockerfile's ENV gives every task's container (its venv aside).
IMAGE_ENV = {'PYTHONUNBUFFERED': '1', 'TF_USE_LEGACY_KERAS': '1', 'TF_CPP_MIN_LOG_LEVEL': '2'}
# The image's WORKDIR holds a copy of this repository; locally the repository is the workdir.
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
CONTAINER, RESOLVER = 'container', 'resolver'
SUCCEEDED, FAILED, NOT_RUN = 'succeeded', 'failed', 'not_run'
BACKENDS = {'kfp': backends.KfpBackend, 'vertex': backends.VertexBackend}
# The launcher's interface: callers catch its SpecError and check the order it runs tasks in.
SpecError = spec_utils.SpecError
task_order = spec_utils.task_order
upstream_tasks = spec_utils.upstream_tasks
# Reading the compiled job, with local folders in place of its roots and volumes.
load_job = job_loading.load_job
local_roots = job_loading.local_roots
local_volumes = job_loading.local_volumes
path_map = job_loading.path_map


class TaskFailed(RuntimeError):
  """A task's subprocess failed; the message ends with the tail of its log."""

  def __init__(self, task: str, step: str, problem: str, log_path: str, tail_lines: int = 40):
    with open(log_path, errors='replace') as f:
      tail = ''.join(f.readlines()[-tail_lines:])
    super().__init__(f'{task} ({step}) failed: {problem}; log {log_path}:\n{tail}')


@dataclasses.dataclass
class TaskResult:
  """How one task of the DAG went."""
  task: str
  kind: str
  status: str = NOT_RUN
  # Wall time of the whole task: the preCacheCheck driver (if any) and the executor.
  seconds: float = 0.0
  driver_seconds: Optional[float] = None
  log_path: str = ''
  error: str = ''


@dataclasses.dataclass
class LauncherResult:
  """A local run: tasks in the order they ran, and the artifacts they made, as recorded."""
  run_id: str
  run_root: str
  tasks: List[TaskResult]
  # (producer task, output key) -> the artifacts as the backend recorded them.
  outputs: Dict[tuple, List[pipeline_spec_pb2.RuntimeArtifact]]
  # Every artifact the containers made, oldest first: the `history` of a next run.
  artifacts: List[pipeline_spec_pb2.RuntimeArtifact]
  paths: job_loading.PathMap

  @property
  def succeeded(self) -> bool:
    return all(t.status == SUCCEEDED for t in self.tasks)

  def output(self, task: str, key: str) -> List[pipeline_spec_pb2.RuntimeArtifact]:
    return self.outputs[(task, key)]

  def local_path(self, uri: str) -> str:
    return self.paths.to_local(uri)


class LocalLauncher:
  """Runs each task of a compiled pipeline's root DAG as a local subprocess, in dependency order.

  Containers run their `command + args` with `{{$}}` replaced by the ExecutorInput JSON, the
  way the KFP launcher starts them, with `python` as this interpreter and every remote root or
  mount path replaced by its local folder. A task starts as soon as every task it depends on
  has succeeded, and up to `max_parallel_tasks` run side by side, as KFP runs independent tasks.
  After the first failure no task starts; running ones finish. There is no execution cache.
  """

  def __init__(self, job: job_loading.Job, log_dir: str, paths: job_loading.PathMap, *,
               backend: str = 'kfp', run_id: str = '',
               arguments: Optional[Mapping[str, object]] = None,
               pipeline_root: Optional[str] = None,
               history: Sequence[pipeline_spec_pb2.RuntimeArtifact] = (),
               python: str = sys.executable, cwd: str = REPO_ROOT,
               timeout_seconds: Optional[float] = None, max_parallel_tasks: int = 1):
    """Prepares a run, with the backend's checks at upload and at run creation.

    Args:
      job: from `load_job`.
      log_dir: where each task's stdout and stderr go (`<task>.log`).
      paths: local folders for the job's remote roots and mounted volumes (`path_map`).
      backend: `kfp` (the open-source backend) or `vertex`.
      run_id: names the run's folder under the pipeline root; defaults to `<name>-<time>`.
      arguments: the run's parameter values.
      pipeline_root: the run's pipeline root (`kfp`; Vertex reads the job's runtime config).
      history: artifacts of earlier runs that resolvers may find (`vertex`).
      python: the interpreter that stands in for the image's `python`.
      cwd: the tasks' working directory, as the image's WORKDIR.
      timeout_seconds: per task; None waits for ever.
      max_parallel_tasks: how many tasks may run at once.

    Raises:
      SpecError: what the backend refuses at upload or at run creation.
    """
    if max_parallel_tasks < 1:
      raise ValueError(f'max_parallel_tasks must be 1 or more, got {max_parallel_tasks}')
    if backend not in BACKENDS:
      raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
    name = job.spec.get('pipelineInfo', {}).get('name', 'run')
    run_id = run_id or f'{name}-{time.strftime("%Y%m%d%H%M%S")}'
    if backend == 'kfp':
      self._backend = backends.KfpBackend(job, run_id, arguments, pipeline_root)
    else:
      self._backend = backends.VertexBackend(job, run_id, arguments)
    self._spec = self._backend.spec
    # The spec holds its deployment config as a Struct.
    self._deployment = json_format.ParseDict(
        json_format.MessageToDict(self._spec.deployment_spec),
        pipeline_spec_pb2.PipelineDeploymentConfig())
    self._paths = paths
    self._log_dir = log_dir
    self._python = python
    self._cwd = cwd
    self._timeout = timeout_seconds
    self._history = [backends.Recorded(-1, artifact) for artifact in history]
    self._max_parallel = max_parallel_tasks
    # Guards what tasks running side by side record and read.
    self._lock = threading.Lock()
    self._made: List[backends.Recorded] = []
    self._outputs: Dict[tuple, List[backends.Recorded]] = {}

  @property
  def order(self) -> List[str]:
    return task_order(self._spec.root.dag.tasks)

  def run(self) -> LauncherResult:
    """Runs every task once, after its upstream tasks, and returns how each went.

    The result lists the tasks in the order they started, then those that never ran.
    """
    os.makedirs(self._log_dir, exist_ok=True)
    pending = self.order
    tasks = self._spec.root.dag.tasks
    needs = {name: set(upstream_tasks(tasks[name])) for name in pending}
    results = {name: TaskResult(name, self._kind(name)) for name in pending}
    started: List[str] = []
    succeeded: set = set()
    failed = False
    with futures.ThreadPoolExecutor(self._max_parallel, thread_name_prefix='task') as pool:
      running: Dict[futures.Future, str] = {}
      while True:
        ready = [] if failed else [n for n in pending if needs[n] <= succeeded]
        for name in ready[:self._max_parallel - len(running)]:
          pending.remove(name)
          started.append(name)
          running[pool.submit(self._run_task, results[name])] = name
        if not running:
          break
        finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
        for future in finished:
          name = running.pop(future)
          future.result()  # _run_task records task failures; anything else is a bug to raise.
          if results[name].status == SUCCEEDED:
            succeeded.add(name)
          else:
            failed = True
    outputs = {key: [r.artifact for r in recorded] for key, recorded in self._outputs.items()}
    return LauncherResult(self._backend.run_id, self._backend.run_root(),
                          [results[name] for name in started + pending], outputs,
                          [r.artifact for r in self._made], self._paths)

  def _run_task(self, result: TaskResult) -> None:
    started = time.monotonic()
    try:
      if result.kind == RESOLVER:
        self._resolve(result.task)
      else:
        self._launch(result)
      result.status = SUCCEEDED
    except (SpecError, TaskFailed) as e:
      result.status, result.error = FAILED, str(e)
    result.seconds = round(time.monotonic() - started, 1)

  def _kind(self, task: str) -> str:
    kind = self._executor(task).WhichOneof('spec')
    if kind not in (CONTAINER, RESOLVER):
      raise SpecError(f'task {task}: {kind} executors are not supported')
    return kind

  def _component(self, task: str) -> pipeline_spec_pb2.ComponentSpec:
    return self._spec.components[self._spec.root.dag.tasks[task].component_ref.name]

  def _executor(self, task: str) -> pipeline_spec_pb2.PipelineDeploymentConfig.ExecutorSpec:
    return self._deployment.executors[self._component(task).executor_label]

  def executor_input(self, task: str) -> pipeline_spec_pb2.ExecutorInput:
    """The ExecutorInput the backend builds for the task: what `{{$}}` stands for."""
    spec = self._spec.root.dag.tasks[task]
    component = self._component(task)
    result = pipeline_spec_pb2.ExecutorInput()
    self._backend.set_parameters(result, component, {
        name: self._backend.input_parameter(task, name, source)
        for name, source in spec.inputs.parameters.items()})
    for name, source in spec.inputs.artifacts.items():
      if source.WhichOneof('kind') != 'task_output_artifact':
        raise SpecError(f'task {task}: artifact {name} is not a task output')
      upstream = source.task_output_artifact
      with self._lock:
        produced = self._outputs.get((upstream.producer_task, upstream.output_artifact_key))
      if produced is None:
        raise SpecError(f'task {task}: {upstream.producer_task}.{upstream.output_artifact_key} '
                        'has not been produced')
      # An empty list is a resolver that found nothing: the input is there, with no artifact.
      result.inputs.artifacts[name].artifacts.extend(
          self._backend.input_artifact(recorded) for recorded in produced)
    if component.output_definitions.parameters:
      raise SpecError(f'task {task}: output parameters are not supported')
    outputs = self._backend.output_artifacts(task, component)
    for name, artifact in outputs.items():
      result.outputs.artifacts[name].artifacts.append(artifact)
    result.outputs.output_file = self._backend.output_file(task, outputs)
    return result

  # Containers --------------------------------------------------------------------------------

  def _launch(self, result: TaskResult) -> None:
    task = result.task
    container = self._executor(task).container
    executor_input = self.executor_input(task)
    output_file = self._paths.to_local(executor_input.outputs.output_file)
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    result.log_path = os.path.join(self._log_dir, f'{task}.log')
    if self._backend.runs_pre_cache_check and container.lifecycle.HasField('pre_cache_check'):
      check = container.lifecycle.pre_cache_check
      started = time.monotonic()
      self._subprocess(task, 'driver', list(check.command) + list(check.args), executor_input,
                       container, result.log_path)
      result.driver_seconds = round(time.monotonic() - started, 1)
      self._apply_driver_output(task, executor_input)
    self._subprocess(task, 'executor', list(container.command) + list(container.args),
                     executor_input, container, result.log_path)
    self._record_outputs(task, executor_input)

  def _subprocess(self, task, step, argv, executor_input, container, log_path) -> None:
    argv = [self._paths.to_local(spec_utils.substitute(arg, executor_input)) for arg in argv]
    if argv and argv[0] in ('python', 'python3'):
      argv[0] = self._python
    env = dict(os.environ, **IMAGE_ENV)
    env.update({e.name: self._paths.to_local(e.value) for e in container.env})
    with open(log_path, 'a') as log:
      log.write(f'==== {task} {step}: {" ".join(argv[:3])} ...\n')
      log.flush()
      try:
        completed = subprocess.run(argv, cwd=self._cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   timeout=self._timeout, check=False)
      except subprocess.TimeoutExpired:
        raise TaskFailed(task, step, f'timed out after {self._timeout} s', log_path) from None
    if completed.returncode != 0:
      raise TaskFailed(task, step, f'exit code {completed.returncode}', log_path)

  def _read_output(self, executor_input) -> Optional[pipeline_spec_pb2.ExecutorOutput]:
    """The ExecutorOutput the task wrote, with local folders named as the task was told."""
    path = self._paths.to_local(executor_input.outputs.output_file)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return self._backend.parse_executor_output(self._paths.to_remote(f.read()))

  def _apply_driver_output(self, task: str, executor_input) -> None:
    """Feeds the driver's ExecutorOutput (span, fingerprint, input config) to the executor."""
    driver_output = self._read_output(executor_input)
    if driver_output is None:
      raise SpecError(f'task {task}: the preCacheCheck driver wrote no output')
    values = dict(driver_output.parameter_values)
    values.update({name: spec_utils.to_struct_value(value)
                   for name, value in driver_output.parameters.items()})
    self._backend.set_parameters(executor_input, self._component(task), values)
    for key, produced in driver_output.artifacts.items():
      for target, update in zip(executor_input.outputs.artifacts[key].artifacts,
                                produced.artifacts):
        target.metadata.update(json_format.MessageToDict(update.metadata))

  def _record_outputs(self, task: str, executor_input) -> None:
    """Records the output artifacts, with the uri and metadata the executor reported."""
    reported = self._read_output(executor_input)
    for key, given in executor_input.outputs.artifacts.items():
      updates = reported.artifacts[key].artifacts if reported and key in reported.artifacts else []
      recorded = []
      for index, original in enumerate(given.artifacts):
        artifact = pipeline_spec_pb2.RuntimeArtifact()
        artifact.CopyFrom(original)
        if index < len(updates):
          artifact.uri = updates[index].uri or artifact.uri
          artifact.metadata.update(json_format.MessageToDict(updates[index].metadata))
        artifact.metadata.CopyFrom(self._backend.recorded_metadata(key, artifact.metadata))
        recorded.append(artifact)
      with self._lock:
        # Ids count up from 1 in the order artifacts are recorded, as ML Metadata gives them.
        recorded = [backends.Recorded(len(self._made) + number, artifact)
                    for number, artifact in enumerate(recorded, start=1)]
        self._outputs[(task, key)] = recorded
        self._made.extend(recorded)

  # Resolvers ---------------------------------------------------------------------------------

  def _resolve(self, task: str) -> None:
    """Runs a RESOLVER task: each output is the latest live artifacts its filter matches."""
    queries = self._executor(task).resolver.output_artifact_queries
    executor_input = self.executor_input(task)
    for key, query in queries.items():
      read = re.findall(r"\.inputs\.artifacts\['([^']+)'\]", query.filter)
      if any(not executor_input.inputs.artifacts[name].artifacts for name in read):
        # The query reads an input that resolved to nothing, so nothing can match.
        matches = []
      else:
        text = spec_utils.substitute(query.filter, executor_input)
        with self._lock:
          known = self._history + self._made
        matches = [r for r in known
                   if spec_utils.matches_filter(text, r.artifact)][-(query.limit or 1):][::-1]
      with self._lock:
        self._outputs[(task, key)] = matches
