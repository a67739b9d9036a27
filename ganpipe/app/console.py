"""What `ganpipe` prints: a line per component, no known noise, and errors on one line."""

import logging
import os
import re
import sys
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


def _ignore_tensorflow_finalizer_errors(unraisable) -> None:
  """TF 2.16's AtomicFunction.__del__ raises while Transform tears down; it is harmless."""
  if 'AtomicFunction.__del__' in repr(unraisable.object):
    return
  sys.__unraisablehook__(unraisable)


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
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
  # Claim the root logger first, so that libraries' later basicConfig() calls are no-ops.
  logging.basicConfig(level=level, handlers=[console], force=True)
  import absl.logging  # pylint: disable=import-outside-toplevel
  absl.logging.set_verbosity(absl.logging.INFO)
  absl_logger = absl.logging.get_absl_logger()
  for handler in [h for h in absl_logger.handlers if isinstance(h, ProgressHandler)]:
    absl_logger.removeHandler(handler)
  absl_logger.addHandler(ProgressHandler())
