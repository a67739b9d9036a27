"""Infra validation: serve a candidate model in a subprocess, query it, check its answers."""

import contextlib
import dataclasses
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import absl.logging as logging
import numpy as np
import portpicker
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tfx.utils import io_utils

from components.image_example_gen import images as images_lib
from serving import client as client_lib

CLASSIFIER = 'classifier'
GENERATOR = 'generator'
MODEL_KINDS = (CLASSIFIER, GENERATOR)
TF_SERVING_BINARY = 'tensorflow_model_server'
VERSION = 1
EVAL_SPLIT = 'eval'
SERVING_DEFAULT = 'serving_default'
SERVING_EXAMPLES = 'serving_examples'
GENERATE = 'generate'
SUM_TOLERANCE = 1e-3
# Float rounding may put a sigmoid or a rescaled tanh a hair outside [0, 1].
RANGE_TOLERANCE = 1e-6
REQUEST_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.25
LOG_TAIL_LINES = 15
LOG_TAIL_CHARS = 2000  # the tail goes into the blessing's `reason`
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# The server's output file; TF Serving logs this line too, so both flavours are parsed alike.
SERVER_LOG = 'server.log'
_LISTENING_LINE = re.compile(r'Running gRPC ModelServer at (\S+):(\d+)')

# The serving contract of each kind: signature -> (its inputs, the outputs it must return).
CONTRACTS = {
    CLASSIFIER: {
        SERVING_DEFAULT: (('images',), ('probabilities', 'class_ids', 'class_names')),
        SERVING_EXAMPLES: (('examples',), ('probabilities', 'class_ids', 'class_names')),
    },
    GENERATOR: {
        SERVING_DEFAULT: (('noise',), ('images',)),
        GENERATE: (('num_images', 'seed'), ('images', 'png')),
    },
}


class ServerError(RuntimeError):
  """The model server could not be run, for a reason that is not the model's."""


class InvalidAnswer(ValueError):
  """A served model answered a request, but not as its contract says."""


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


@dataclasses.dataclass(frozen=True)
class ServingBinary:
  """A model server speaking TF Serving's gRPC API.

  Attributes:
    path: a `tensorflow_model_server` compatible executable, or '' for ganpipe's own server.
  """
  path: str = ''

  @property
  def is_own_server(self) -> bool:
    return not self.path

  def describe(self) -> str:
    return self.path or "ganpipe's serving.server"

  def command(self, model_name: str, base_path: str, port: int) -> List[str]:
    if self.is_own_server:
      return [sys.executable, '-m', 'serving.server', '--port', str(port), '--model_name',
              model_name, '--model_base_path', base_path, '--file_system_poll_wait_seconds', '0']
    return [self.path, f'--port={port}', f'--model_name={model_name}',
            f'--model_base_path={base_path}']


def choose_serving_binary(configured: str = '') -> ServingBinary:
  """The configured binary; else `tensorflow_model_server` if on PATH; else ganpipe's server.

  Raises:
    ServerError: the configured binary is not an executable file or a command on PATH.
  """
  if configured:
    path = shutil.which(configured)
    if path is None:
      raise ServerError(f'serving binary {configured!r} is not an executable file or a command '
                        'on PATH')
    return ServingBinary(path)
  return ServingBinary(shutil.which(TF_SERVING_BINARY) or '')


class ModelServerProcess:
  """A model server subprocess on a loopback port, killed with its process group on exit.

  tensorflow_model_server cannot pick a port itself, so it gets a free one; ganpipe's server
  binds port 0 and reports the port it got in its "Running gRPC ModelServer at" line.
  """

  def __init__(self, binary: ServingBinary, model_name: str, base_path: str, log_dir: str):
    self.binary = binary
    self._port = 0 if binary.is_own_server else portpicker.pick_unused_port()
    self._command = binary.command(model_name, base_path, self._port)
    self._log_path = os.path.join(log_dir, SERVER_LOG)
    self._popen: Optional[subprocess.Popen] = None

  def __enter__(self) -> 'ModelServerProcess':
    logging.info('Starting the model server: %s', ' '.join(self._command))
    # A file, not a pipe: a chatty server can never block on a full pipe nobody reads.
    with open(self._log_path, 'wb') as log:
      try:
        # Its own session, so that killing the group also ends any process a wrapper started.
        self._popen = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
      except OSError as error:
        raise ServerError(f'cannot start the model server {self.binary.describe()}: '
                          f'{error}') from error
    return self

  def __exit__(self, *exc_info) -> None:
    self.kill()
    logging.info('Model server output:\n%s', self.log_text())

  @property
  def pid(self) -> int:
    return self._popen.pid

  def kill(self) -> None:
    """Kills the server and reaps it; a no-op once it is gone."""
    if self._popen is None:
      return
    # Only a process not yet reaped is certain to still own its pid (and process group id).
    if self._popen.returncode is None:
      try:
        os.killpg(self._popen.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    self._popen.wait()

  def exit_code(self) -> Optional[int]:
    return self._popen.poll()

  def target(self) -> Optional[str]:
    """The server's `host:port`, once known."""
    if self._port:
      return f'127.0.0.1:{self._port}'
    match = _LISTENING_LINE.search(self.log_text())
    return f'127.0.0.1:{match.group(2)}' if match else None

  def log_text(self) -> str:
    with open(self._log_path, encoding='utf-8', errors='replace') as f:
      return f.read()

  def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
    tail = ' | '.join(line.strip() for line in self.log_text().splitlines()[-lines:]
                      if line.strip())
    return tail[-LOG_TAIL_CHARS:]


def read_eval_examples(examples_uri: str, count: int) -> List[bytes]:
  """The first `count` serialized tf.Examples of ImageExampleGen's eval split.

  Raises:
    FileNotFoundError: the split has no files, or no examples.
  """
  pattern = os.path.join(examples_uri, f'Split-{EVAL_SPLIT}', '*.gz')
  files = sorted(glob.glob(pattern))
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(count)
  examples = [record.numpy() for record in dataset] if files else []
  if not examples:
    raise FileNotFoundError(f'no examples in {pattern}')
  return examples


def make_request(model_name: str, signature: str,
                 inputs: Mapping[str, np.ndarray]) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  for alias, value in inputs.items():
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
  return request


def classifier_requests(model_name: str, examples: Sequence[bytes]
                        ) -> List[predict_pb2.PredictRequest]:
  """For k = 1..len(examples), the first k images to `serving_default` and `serving_examples`.

  Every batch size up to the count is checked, and then warmed up by the warmup file.
  """
  pngs = [tf.train.Example.FromString(example).features.feature[images_lib.IMAGE_KEY]
          .bytes_list.value[0] for example in examples]
  requests = []
  for count in range(1, len(examples) + 1):
    requests.append(make_request(model_name, SERVING_DEFAULT,
                                 {'images': np.array(pngs[:count], dtype=object)}))
    requests.append(make_request(model_name, SERVING_EXAMPLES,
                                 {'examples': np.array(examples[:count], dtype=object)}))
  return requests


def generator_requests(model_name: str, latent_dim: int, count: int
                       ) -> List[predict_pb2.PredictRequest]:
  """For k = 1..count, k noise vectors to `serving_default` and k images from `generate`.

  The first `generate` request is repeated last: the same seed must give the same images.
  """
  rng = np.random.default_rng(0)
  requests = []
  for size in range(1, count + 1):
    noise = rng.standard_normal((size, latent_dim), dtype=np.float32)
    requests.append(make_request(model_name, SERVING_DEFAULT, {'noise': noise}))
    requests.append(make_request(model_name, GENERATE,
                                 {'num_images': np.int32(size), 'seed': np.int64(size - 1)}))
  requests.append(requests[1])
  return requests


def batch_size(request: predict_pb2.PredictRequest) -> int:
  """How many items a request asks for: its batch dimension, or `num_images`."""
  if 'num_images' in request.inputs:
    return int(tf.make_ndarray(request.inputs['num_images']))
  return request.inputs[next(iter(sorted(request.inputs)))].tensor_shape.dim[0].size


def check_signatures(kind: str, metadata: Mapping[str, Mapping]) -> None:
  """Raises InvalidAnswer unless the model has every signature of its kind's contract."""
  # Like TF Serving, ganpipe's server lists the init op, which no client can call.
  callable_signatures = sorted(name for name in metadata if not name.startswith('__'))
  for signature, (inputs, outputs) in CONTRACTS[kind].items():
    if signature not in metadata:
      raise InvalidAnswer(f'signature {signature!r} is missing; the model has: '
                          f'{", ".join(callable_signatures) or "no signatures"}')
    declared = metadata[signature]
    if sorted(declared['inputs']) != sorted(inputs):
      raise InvalidAnswer(f'signature {signature!r} takes inputs {sorted(declared["inputs"])}, '
                          f'expected {sorted(inputs)}')
    missing = sorted(set(outputs) - set(declared['outputs']))
    if missing:
      raise InvalidAnswer(f'signature {signature!r} has no output {missing[0]!r}; its outputs: '
                          f'{", ".join(sorted(declared["outputs"]))}')


def latent_dim_of(metadata: Mapping[str, Mapping]) -> int:
  """The generator's noise size, from `serving_default`'s `noise` [batch, latent_dim] input."""
  shape = metadata[SERVING_DEFAULT]['inputs']['noise']['shape']
  if shape is None or len(shape) != 2 or not shape[1]:
    raise InvalidAnswer(f"input 'noise' of signature {SERVING_DEFAULT!r} has shape {shape}, "
                        'expected [batch, latent_dim] with a known latent_dim')
  return shape[1]


def _output(outputs: Mapping[str, np.ndarray], alias: str, where: str) -> np.ndarray:
  if alias not in outputs:
    raise InvalidAnswer(f'{where} returned no {alias!r} output (it returned: '
                        f'{", ".join(sorted(outputs)) or "nothing"})')
  return outputs[alias]


def _check_array(value: np.ndarray, what: str, dtype: str,
                 shape: Sequence[Optional[int]]) -> None:
  """`dtype` is a numpy name or 'string'; `shape` holds None for any size."""
  got = 'string' if value.dtype == object or value.dtype.kind == 'S' else value.dtype.name
  if got != dtype:
    raise InvalidAnswer(f'{what} are {got}, expected {dtype}')
  if value.ndim != len(shape) or any(want is not None and size != want
                                     for size, want in zip(value.shape, shape)):
    expected = ', '.join('?' if want is None else str(want) for want in shape)
    raise InvalidAnswer(f'{what} have shape {list(value.shape)}, expected [{expected}]')


def _check_unit_range(value: np.ndarray, what: str) -> None:
  if not np.all(np.isfinite(value)):
    raise InvalidAnswer(f'{what} are not all finite ({np.sum(~np.isfinite(value))} NaN or '
                        'infinite values)')
  if not value.size:
    return
  low, high = float(value.min()), float(value.max())
  if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
    raise InvalidAnswer(f'{what} are outside [0, 1]: from {low:.4g} to {high:.4g}')


def check_classifier_answer(index: int, count: int, outputs: Mapping[str, np.ndarray]) -> None:
  """Raises InvalidAnswer unless `outputs` is a well-formed answer about `count` images."""
  where = f'request {index}'
  probabilities = _output(outputs, 'probabilities', where)
  class_ids = _output(outputs, 'class_ids', where)
  class_names = _output(outputs, 'class_names', where)
  _check_array(probabilities, f'probabilities of {where}', 'float32', (count, None))
  _check_array(class_ids, f'class_ids of {where}', 'int64', (count,))
  _check_array(class_names, f'class_names of {where}', 'string', (count,))
  if probabilities.shape[1] < 1:
    raise InvalidAnswer(f'probabilities of {where} have no classes')
  _check_unit_range(probabilities, f'probabilities of {where}')
  sums = probabilities.sum(axis=1, dtype=np.float64)
  worst = int(np.argmax(np.abs(sums - 1.0)))
  if abs(sums[worst] - 1.0) > SUM_TOLERANCE:
    raise InvalidAnswer(f'probabilities of {where} sum to {sums[worst]:.4g} (image {worst}), '
                        'not 1')
  for row, class_id in enumerate(class_ids):
    # Compared by value, so that ties between classes do not fail a correct argmax.
    if not (0 <= class_id < probabilities.shape[1] and
            probabilities[row, class_id] == probabilities[row].max()):
      raise InvalidAnswer(f'class_ids of {where} are not the argmax of its probabilities: '
                          f'image {row} has class {class_id}, argmax '
                          f'{int(np.argmax(probabilities[row]))}')


def check_images(images: np.ndarray, count: int, what: str) -> None:
  """Raises InvalidAnswer unless `images` are `count` float32 [h, w, c] images in [0, 1]."""
  _check_array(images, what, 'float32', (count, None, None, None))
  _check_unit_range(images, what)


def check_pngs(png: np.ndarray, images: np.ndarray, where: str) -> None:
  """Raises InvalidAnswer unless `png` holds one PNG per image, of the image's shape."""
  _check_array(png, f'png of {where}', 'string', (len(images),))
  for number, data in enumerate(png):
    if not bytes(data).startswith(PNG_SIGNATURE):
      raise InvalidAnswer(f'png {number} of {where} is not a PNG')
    try:
      decoded = tf.io.decode_image(bytes(data), expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
      raise InvalidAnswer(f'png {number} of {where} does not decode: '
                          f'{error.message.splitlines()[0]}') from error
    if tuple(decoded.shape) != images.shape[1:]:
      raise InvalidAnswer(f'png {number} of {where} has shape {list(decoded.shape)}, the '
                          f'image\'s is {list(images.shape[1:])}')


def check_answers(kind: str, requests: Sequence[predict_pb2.PredictRequest],
                  answers: Sequence[Mapping[str, np.ndarray]]) -> None:
  """Checks every answer, then what the answers must agree on across requests.

  Raises:
    InvalidAnswer: the first answer, or pair of answers, that breaks the contract.
  """
  image_shapes = {}
  for index, (request, outputs) in enumerate(zip(requests, answers)):
    count = batch_size(request)
    signature = request.model_spec.signature_name
    if kind == CLASSIFIER:
      check_classifier_answer(index, count, outputs)
      continue
    where = f'request {index}'
    images = _output(outputs, 'images', where)
    check_images(images, count, f'images of {where}')
    image_shapes.setdefault(images.shape[1:], signature)
    if signature == GENERATE:
      check_pngs(_output(outputs, 'png', where), images, where)
  if kind == CLASSIFIER:
    _check_signatures_agree(requests, answers)
  else:
    if len(image_shapes) > 1:
      shapes = ', '.join(f'{list(shape)} from {signature!r}'
                         for shape, signature in image_shapes.items())
      raise InvalidAnswer(f'the images have different shapes: {shapes}')
    _check_repeat_is_identical(requests, answers)


def _check_signatures_agree(requests, answers) -> None:
  """`serving_default` and `serving_examples` must classify the same images alike."""
  by_signature: Dict[str, Dict[int, Tuple[int, np.ndarray]]] = {}
  for index, (request, outputs) in enumerate(zip(requests, answers)):
    by_signature.setdefault(request.model_spec.signature_name, {})[batch_size(request)] = (
        index, outputs['class_ids'])
  for count, (index, class_ids) in by_signature.get(SERVING_DEFAULT, {}).items():
    other = by_signature.get(SERVING_EXAMPLES, {}).get(count)
    if other is not None and not np.array_equal(class_ids, other[1]):
      raise InvalidAnswer(f'requests {index} ({SERVING_DEFAULT!r}) and {other[0]} '
                          f'({SERVING_EXAMPLES!r}) gave the same images different class_ids: '
                          f'{class_ids.tolist()} and {other[1].tolist()}')


def _check_repeat_is_identical(requests, answers) -> None:
  first = {}
  for index, request in enumerate(requests):
    if request.model_spec.signature_name != GENERATE:
      continue
    key = request.SerializeToString(deterministic=True)
    if key in first:
      earlier = first[key]
      if not np.array_equal(answers[earlier]['images'], answers[index]['images']):
        seed = int(tf.make_ndarray(request.inputs['seed']))
        raise InvalidAnswer(f'requests {earlier} and {index} ({GENERATE!r} with seed {seed}) '
                            'gave different images for the same seed')
    else:
      first[key] = index


def _wait_until_available(server: ModelServerProcess, model_name: str, timeout: float,
                          started: float) -> Optional[str]:
  """None once the model is AVAILABLE, else why it did not become so in time.

  Raises:
    ServerError: ganpipe's server exited; it reports a model's load error in GetModelStatus
      and keeps running, so its exit is not the model's doing. (tensorflow_model_server exits
      when a model fails to load, so its exit is the model's.)
  """
  deadline = started + timeout
  last = 'the server was not listening yet'
  while True:
    exit_code = server.exit_code()
    if exit_code is not None:
      message = f'the server exited with code {exit_code}: {server.log_tail()}'
      if server.binary.is_own_server:
        raise ServerError(f'the model server {server.binary.describe()} failed: {message}')
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
      raise InvalidAnswer(f'request {index} ({signature!r}) failed: {error}') from error
  return answers


def _query(target: str, model_name: str, kind: str, examples: Optional[Sequence[bytes]],
           num_requests: int) -> Tuple[List[predict_pb2.PredictRequest], str]:
  """Sends the kind's requests and checks the answers; returns them and what was checked.

  Raises:
    InvalidAnswer: the model broke its contract.
  """
  with client_lib.ServingClient(target, timeout=REQUEST_TIMEOUT_SECONDS, retries=0) as client:
    try:
      metadata = client.model_metadata(model_name)
    except client_lib.ServingError as error:
      raise InvalidAnswer(f'GetModelMetadata failed: {error}') from error
    check_signatures(kind, metadata)
    if kind == CLASSIFIER:
      if examples is None:
        return [], 'no examples, so no requests were sent'
      requests = classifier_requests(model_name, examples)
    else:
      requests = generator_requests(model_name, latent_dim_of(metadata), num_requests)
    check_answers(kind, requests, _send(client, model_name, requests))
  signatures = ', '.join(sorted({r.model_spec.signature_name for r in requests}))
  return requests, f'{len(requests)} requests to {signatures} answered well'


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
    serving_binary: see `choose_serving_binary`.

  Returns:
    The verdict, with the requests the model answered well when blessed.

  Raises:
    ValueError: a bad argument.
    FileNotFoundError: `examples_uri` has no eval split.
    ServerError: the server could not be run, through no fault of the model.
    Interrupted: SIGTERM arrived; the server was killed.
  """
  if kind not in MODEL_KINDS:
    raise ValueError(f'model_kind must be one of {", ".join(MODEL_KINDS)}, got {kind!r}')
  if not model_name or os.sep in model_name:
    raise ValueError(f'model_name must be a non-empty name without {os.sep!r}, got '
                     f'{model_name!r}')
  if timeout_seconds <= 0 or num_requests < 1:
    raise ValueError(f'timeout_seconds and num_requests must be positive, got '
                     f'{timeout_seconds} and {num_requests}')
  binary = choose_serving_binary(serving_binary)
  examples = None
  if kind == CLASSIFIER and examples_uri:
    examples = read_eval_examples(examples_uri, num_requests)
  if not tf.io.gfile.exists(os.path.join(model_dir, 'saved_model.pb')):
    return ValidationResult(False, f'no SavedModel in {model_dir}: saved_model.pb is missing')

  sandbox = tempfile.mkdtemp(prefix='infra_validator_')
  try:
    # TF Serving serves numbered versions under a base path named after the model.
    base_path = os.path.join(sandbox, model_name)
    io_utils.copy_dir(model_dir, os.path.join(base_path, str(VERSION)))
    started = time.monotonic()
    with _sigterm_raises(), ModelServerProcess(binary, model_name, base_path, sandbox) as server:
      failure = _wait_until_available(server, model_name, timeout_seconds, started)
      if failure is not None:
        return ValidationResult(False, f'model did not become AVAILABLE within '
                                       f'{timeout_seconds:g} s: {failure}')
      loaded_after = time.monotonic() - started
      try:
        requests, checked = _query(server.target(), model_name, kind, examples, num_requests)
      except InvalidAnswer as error:
        return ValidationResult(False, str(error))
    return ValidationResult(True, f'passed: {binary.describe()} made {model_name!r} AVAILABLE '
                                  f'in {loaded_after:.1f} s; {checked}', tuple(requests))
  finally:
    shutil.rmtree(sandbox, ignore_errors=True)


def prediction_logs(requests: Sequence[predict_pb2.PredictRequest]
                    ) -> List[prediction_log_pb2.PredictionLog]:
  """The requests as TF Serving's warmup records."""
  return [prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request)) for request in requests]
