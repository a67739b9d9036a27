"""The compact epoch progress lines."""

import io

from ganpipe.models.training import progress


def test_prints_first_last_and_every_nth_epoch():
  stream = io.StringIO()
  callback = progress.EpochSummary(epochs=25, every=10, stream=stream)
  for epoch in range(25):
    callback.on_epoch_end(epoch, {'loss': 1.0 / (epoch + 1), 'accuracy': 0.5})
  lines = stream.getvalue().splitlines()
  assert [line.split(':')[0].strip() for line in lines] == [
      'epoch 1/25', 'epoch 10/25', 'epoch 20/25', 'epoch 25/25']
  assert 'accuracy 0.5000 loss 0.0400' in lines[-1]


class _Stream(io.StringIO):

  def __init__(self, tty: bool):
    super().__init__()
    self._tty = tty

  def isatty(self) -> bool:
    return self._tty


def test_keras_draws_its_progress_bar_only_on_a_terminal():
  assert progress.keras_verbosity(_Stream(tty=True)) == 1
  assert progress.keras_verbosity(_Stream(tty=False)) == 2
