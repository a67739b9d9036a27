"""Infra validation: serve a candidate model in a subprocess, query it, check its answers."""

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tfx.utils import io_utils

from ganpipe.components.infra_validator import answer_checks
from ganpipe.components.infra_validator import contract
from ganpipe.components.infra_validator import model_server
from ganpipe.components.infra_validator import predict_requests
from ganpipe.models import signatures
from ganpipe.serving import client as client_lib

VERSION = 1
REQUEST_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.25


class Interrupted(RuntimeError):
  """The validation got SIGTERM (as a Kubernetes pod does before it is killed)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
  """Turns SIGTERM into an exception, so that the server is killed on the way out.

  As in TFX's InfraValidator, only the main thread can install the handler; elsewhere SIGTERM
  keeps its default, immediate, effect.
  """
  def handler(signum, frame):
    del frame  # unused
    raise Interrupted(f'infra validation got signal {signum}')

  try:
    previous = signal.signal(signal.SIGTERM, handler)
  except ValueError:
    previous = None
  try:
    yield
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


@dataclasses.dataclass(frozen=True)
class ValidationResult:
  """The verdict on one model.

  Attributes:
    blessed: whether the model loaded and answered every request well.
    reason: "passed: ..." or why it failed.
    requests: when blessed, the requests it answered, in order: its warmup requests.
  """
  blessed: bool
  reason: str
  requests: Tuple[predict_pb2.PredictRequest, ...] = ()


def _wait_until_available(server: model_server.ModelServerProcess, model_name: str,
                          timeout: float, started: float) -> Optional[str]:
  """None once the model is AVAILABLE, else why it did not become so in time.

  Raises:
    model_server.ServerError: ganpipe's server exited; it reports a model's load error in
      GetModelStatus and keeps running, so its exit is not the model's doing.
      (tensorflow_model_server exits when a model fails to load, so its exit is the model's.)
  """
  deadline = started + timeout
  last = 'the server was not listening yet'
  while True:
    exit_code = server.exit_code()
    if exit_code is not None:
      message = f'the server exited with code {exit_code}: {server.log_tail()}'
      if server.binary.is_own_server:
        raise model_server.ServerError(f'the model server {server.binary.describe()} failed: '
                                       f'{message}')
      return message
    target = server.target()
    if target is not None:
      # A fresh channel each time: a refused connection would otherwise back off for longer.
      with client_lib.ServingClient(target, timeout=2.0, retries=0) as client:
        try:
          statuses = client.model_status(model_name)
        except client_lib.ServingError as error:
          last = f'GetModelStatus failed: {error}'
        else:
          states = [status['state'] for status in statuses]
          errors = [status['error'] for status in statuses if status['error']]
          if states and all(state == 'AVAILABLE' for state in states):
            return None
          if 'END' in states:
            return '; '.join(errors) or f'the model ended in state END: {statuses}'
          last = f'its status was {", ".join(states) or "no versions yet"}'
    if time.monotonic() >= deadline:
      return f'{last}; server output: {server.log_tail()}'
    time.sleep(POLL_SECONDS)


def _send(client: client_lib.ServingClient, model_name: str,
          requests: Sequence[predict_pb2.PredictRequest]) -> List[Dict[str, np.ndarray]]:
  answers = []
  for index, request in enumerate(requests):
    signature = request.model_spec.signature_name
    try:
      answers.append(client.predict(model_name, dict(request.inputs), signature=signature))
    except client_lib.ServingError as error:
      raise contract.InvalidAnswer(f'request {index} ({signature!r}) failed: {error}') from error
  return answers


def _query(target: str, model_name: str, kind: str, examples: Optional[Sequence[bytes]],
           num_requests: int) -> Tuple[List[predict_pb2.PredictRequest], str]:
  """Sends the kind's requests and checks the answers; returns them and what was checked.

  Raises:
    contract.InvalidAnswer: the model broke its contract.
  """
  with client_lib.ServingClient(target, timeout=REQUEST_TIMEOUT_SECONDS, retries=0) as client:
    try:
      metadata = client.model_metadata(model_name)
    except client_lib.ServingError as error:
      raise contract.InvalidAnswer(f'GetModelMetadata failed: {error}') from error
    contract.check_signatures(kind, metadata)
    if kind == signatures.CLASSIFIER:
      if examples is None:
        return [], 'no examples, so no requests were sent'
      requests = predict_requests.classifier_requests(model_name, examples)
    else:
      requests = predict_requests.generator_requests(
          model_name, contract.latent_dim_of(metadata), num_requests)
    answer_checks.check_answers(kind, requests, _send(client, model_name, requests))
  called = ', '.join(sorted({r.model_spec.signature_name for r in requests}))
  return requests, f'{len(requests)} requests to {called} answered well'


def validate(model_dir: str, model_name: str, kind: str, examples_uri: Optional[str] = None,
             timeout_seconds: float = 120.0, num_requests: int = 8,
             serving_binary: str = '') -> ValidationResult:
  """Serves a copy of a SavedModel as TF Serving would, and checks it answers well.

  Args:
    model_dir: the SavedModel.
    model_name: the name it is served under.
    kind: `classifier` or `generator`, which sets the signatures, requests and checks.
    examples_uri: ImageExampleGen's output; a classifier is sent its first eval images. Without
      it a classifier is only loaded and its signatures checked.
    timeout_seconds: how long the server may take to start and make the model AVAILABLE.
    num_requests: requests per signature; request k carries k images (or noise vectors).
    serving_binary: see `model_server.choose_serving_binary`.

  Returns:
    The verdict, with the requests the model answered well when blessed.

  Raises:
    ValueError: a bad argument.
    FileNotFoundError: `examples_uri` has no eval split.
    model_server.ServerError: the server could not be run, through no fault of the model.
    Interrupted: SIGTERM arrived; the server was killed.
  """
  if kind not in signatures.MODEL_KINDS:
    raise ValueError(f'model_kind must be one of {", ".join(signatures.MODEL_KINDS)}, got '
                     f'{kind!r}')
  if not model_name or os.sep in model_name:
    raise ValueError(f'model_name must be a non-empty name without {os.sep!r}, got '
                     f'{model_name!r}')
  if timeout_seconds <= 0 or num_requests < 1:
    raise ValueError(f'timeout_seconds and num_requests must be positive, got '
                     f'{timeout_seconds} and {num_requests}')
  binary = model_server.choose_serving_binary(serving_binary)
  examples = None
  if kind == signatures.CLASSIFIER and examples_uri:
    examples = predict_requests.read_eval_examples(examples_uri, num_requests)
  if not tf.io.gfile.exists(os.path.join(model_dir, 'saved_model.pb')):
    return ValidationResult(False, f'no SavedModel in {model_dir}: saved_model.pb is missing')

  sandbox = tempfile.mkdtemp(prefix='infra_validator_')
  try:
    # TF Serving serves numbered versions under a base path named after the model.
    base_path = os.path.join(sandbox, model_name)
    io_utils.copy_dir(model_dir, os.path.join(base_path, str(VERSION)))
    started = time.monotonic()
    with _sigterm_raises(), model_server.ModelServerProcess(
        binary, model_name, base_path, sandbox) as server:
      failure = _wait_until_available(server, model_name, timeout_seconds, started)
      if failure is not None:
        return ValidationResult(False, f'model did not become AVAILABLE within '
                                       f'{timeout_seconds:g} s: {failure}')
      loaded_after = time.monotonic() - started
      try:
        requests, checked = _query(server.target(), model_name, kind, examples, num_requests)
      except contract.InvalidAnswer as error:
        return ValidationResult(False, str(error))
    return ValidationResult(True, f'passed: {binary.describe()} made {model_name!r} AVAILABLE '
                                  f'in {loaded_after:.1f} s; {checked}', tuple(requests))
  finally:
    shutil.rmtree(sandbox, ignore_errors=True)
