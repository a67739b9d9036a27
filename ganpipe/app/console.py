"""What `ganpipe` prints: a line per component, no known noise, and errors on one line."""

import contextlib
import logging
import os
import re
import sys
import threading
import time


def quiet_environment() -> None:
  """Keeps TensorFlow's C++ chatter and third-party FutureWarnings out of the user's terminal.

  Set before TensorFlow loads; Beam worker processes inherit it. Explicit user settings win.
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  os.environ.setdefault('PYTHONWARNINGS', 'ignore::FutureWarning,ignore::DeprecationWarning')
  import warnings  # pylint: disable=import-outside-toplevel
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  sys.unraisablehook = _ignore_tensorflow_finalizer_errors


# What TF 2.16's AtomicFunction.__del__ raises when a process exits: the module global it
# decrements (atomic_function.RUNTIME_FUNCTION_REFS) is already None. Harmless.
_FINALIZER_ERROR_START = b'Exception ignored in: <function AtomicFunction.__del__'
_FINALIZER_ERROR_END = b"TypeError: 'NoneType' object is not subscriptable"
_FINALIZER_ERROR_LINES = 6  # at most, from its first line to its last


def _ignore_tensorflow_finalizer_errors(unraisable) -> None:
  """TF 2.16's AtomicFunction.__del__ raises while Transform tears down; it is harmless."""
  if 'AtomicFunction.__del__' in repr(unraisable.object):
    return
  sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def without_worker_finalizer_errors():
  """Leaves TF 2.16's AtomicFunction.__del__ error out of what child processes write to stderr.

  The Beam DirectRunner's worker processes print it as they exit, after every Transform
  (`python -m apache_beam.runners.worker.sdk_worker_main`, started without the pipeline's
  options, so nothing of ganpipe runs there to install the hook above). Within this block file
  descriptor 2 is a pipe, which a thread copies to the real stderr line by line, leaving those
  blocks out; everything else passes unchanged.
  """
  sys.stderr.flush()
  real_stderr = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  copier = threading.Thread(target=_copy_without_finalizer_errors,
                            args=(read_end, real_stderr), daemon=True)
  copier.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(real_stderr, 2)  # the pipe ends once every child holding it has exited too
    copier.join(timeout=10)
    if not copier.is_alive():
      os.close(real_stderr)


def _copy_without_finalizer_errors(read_end: int, out: int) -> None:
  """Copies lines, dropping each whole finalizer error; any other line ends a held block."""
  held = []  # the lines of what may be a finalizer error, until it is known to be one
  with os.fdopen(read_end, 'rb') as lines:
    for line in lines:
      if line.startswith(_FINALIZER_ERROR_START):
        os.write(out, b''.join(held))
        held = [line]
      elif held and line.startswith(_FINALIZER_ERROR_END):
        held = []
      elif (held and len(held) < _FINALIZER_ERROR_LINES and
            line.startswith((b'Traceback (most recent call last):', b'  '))):
        held.append(line)
      else:
        os.write(out, b''.join(held) + line)
        held = []
    os.write(out, b''.join(held))


class ProgressHandler(logging.Handler):
  """Turns the TFX launcher's log records into one line per component."""

  _START = re.compile(r'^(?:Component|node) (\S+) is running\.')
  _END = re.compile(r'^(?:Component|node) (\S+) is finished\.')
  _CACHED = re.compile(r'^A cached execution \d+ is used\.')

  def __init__(self, stream=sys.stdout):
    super().__init__(logging.INFO)
    self._stream = stream
    self._started = {}
    self._cached = set()
    self._current = None

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    if match := self._START.match(message):
      self._current = match.group(1)
      self._started[self._current] = time.monotonic()
      self._print(f'  {self._current} ...')
    elif self._CACHED.match(message) and self._current:
      self._cached.add(self._current)
    elif match := self._END.match(message):
      node = match.group(1)
      elapsed = time.monotonic() - self._started.get(node, time.monotonic())
      how = 'cached' if node in self._cached else 'done'
      self._print(f'  {node} {how} ({elapsed:.1f} s)')

  def _print(self, line: str) -> None:
    self._stream.write(line + '\n')
    self._stream.flush()


class KnownNoiseFilter(logging.Filter):
  """Drops warnings that are harmless and that users can do nothing about."""

  _NOISE = (
      # TFX 1.16 tests a proto message for truth, so it warns on every channel it resolves.
      'property_predicate is not supported',
      # Transform does not tag its output with a payload format; the default is the right one.
      'does not have payload_format custom property',
      # Loading a Keras SavedModel for inference; nothing asks for its gradients.
      'with ops with unsaved custom gradients',
      # Each Beam worker of the multi-processing DirectRunner says this as it starts; it is about
      # types registered in the launching process, which these pipelines do not use.
      'No semi_persistent_directory found',
  )

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(noise in message for noise in self._NOISE)


class ReraisedErrorFilter(logging.Filter):
  """Drops the log records of a failure that is raised on to the CLI, which reports it once.

  A failing component's error is logged with its traceback by Beam
  (apache_beam/runners/common.py, DoFnRunner._reraise_augmented: `_LOGGER.exception`) and again
  by TFX's launcher (tfx/orchestration/portable/launcher.py: `Execution N failed.`), and both
  raise it on; `ganpipe run` then prints it as one line. With --verbose all of it shows.
  """

  _LAUNCHER_FAILED = re.compile(r'^Execution \d+ failed\.$')

  def filter(self, record: logging.LogRecord) -> bool:
    if record.name == 'apache_beam.runners.common' and record.exc_info:
      return False
    return not (record.levelno == logging.ERROR and
                self._LAUNCHER_FAILED.match(record.getMessage()))


def one_line(error: BaseException) -> str:
  """The innermost message of an error, on one line, without Beam's step annotations."""
  while error.__cause__ is not None:
    error = error.__cause__
  text = ' '.join(str(error).split()) or type(error).__name__
  return re.sub(r"\s*\[while running '[^']*'\]", '', text)


def error(message: str) -> None:
  print(f'ganpipe: error: {message}', file=sys.stderr)


def configure_logging(verbose: bool) -> None:
  """TFX's INFO logs become one progress line per component unless `verbose`."""
  level = logging.INFO if verbose else logging.WARNING
  console = logging.StreamHandler()
  console.setLevel(level)
  console.setFormatter(logging.Formatter('%(levelname)s:%(name)s:%(message)s'))
  if not verbose:
    console.addFilter(KnownNoiseFilter())
    console.addFilter(ReraisedErrorFilter())
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
  # Claim the root logger first, so that libraries' later basicConfig() calls are no-ops.
  logging.basicConfig(level=level, handlers=[console], force=True)
  import absl.logging  # pylint: disable=import-outside-toplevel
  absl.logging.set_verbosity(absl.logging.INFO)
  absl_logger = absl.logging.get_absl_logger()
  for handler in [h for h in absl_logger.handlers if isinstance(h, ProgressHandler)]:
    absl_logger.removeHandler(handler)
  absl_logger.addHandler(ProgressHandler())
