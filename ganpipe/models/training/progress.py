"""A compact Keras progress callback: one line every few epochs instead of two per epoch."""

import sys
import time

import tf_keras as keras


def keras_verbosity(stream=None) -> int:
  """`fit(verbose=...)` for `stream` (stdout): 1, a progress bar, on a terminal; else 2.

  Keras redraws its bar in place with backspaces and carriage returns whenever `posix` is in
  sys.modules, that is on every Linux, terminal or not (tf_keras/src/utils/generic_utils.py,
  Progbar._dynamic_display), so a log file got every redraw: 108 KB for 9.7 KB of text. With 2
  it writes one line per epoch.
  """
  stream = stream or sys.stdout
  return 1 if getattr(stream, 'isatty', lambda: False)() else 2


class EpochSummary(keras.callbacks.Callback):
  """Prints `epoch i/n: metric value ...` for the first, the last and every `every`-th epoch."""

  def __init__(self, epochs: int, every: int = 0, stream=None):
    super().__init__()
    self._epochs = epochs
    self._every = every or max(1, epochs // 10)
    self._stream = stream or sys.stdout
    self._started = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    number = epoch + 1
    if number not in (1, self._epochs) and number % self._every:
      return
    metrics = ' '.join(f'{name} {value:.4f}' for name, value in sorted((logs or {}).items()))
    elapsed = time.monotonic() - self._started
    self._stream.write(f'    epoch {number}/{self._epochs}: {metrics} ({elapsed:.0f} s)\n')
    self._stream.flush()
