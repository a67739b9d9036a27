"""GAN training: resuming after an interruption, sample grids, and the exported generator."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from ganpipe.models import hparams
from ganpipe.models import signatures
from ganpipe.models.gan import grid as grid_lib
from ganpipe.models.gan import training
from ganpipe.models.training import strategy as strategy_lib
from ganpipe.pipeline import config as config_lib

SHAPE = (8, 8, 1)


def _dataset(seed=0):
  images = np.random.default_rng(seed).uniform(-1, 1, (64, *SHAPE)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(images).repeat().batch(8)


def _config(**overrides):
  values = dict(latent_dim=8, batch_size=8, epochs=4, steps_per_epoch=3)
  values.update(overrides)
  return config_lib.GanConfig(**values)


class _Interrupt(keras.callbacks.Callback):
  """Raises at the end of one epoch, as a preempted worker would die."""

  def __init__(self, after_epoch):
    super().__init__()
    self.after_epoch = after_epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch == self.after_epoch:
      raise RuntimeError('simulated preemption')


class _EpochRecorder(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


def test_interrupted_training_resumes_at_the_right_epoch(tmp_path):
  setup = strategy_lib.choose_training_setup()
  backup = str(tmp_path / 'backup')
  keras.utils.set_random_seed(0)
  with pytest.raises(RuntimeError, match='simulated preemption'):
    training.train(_config(), SHAPE, _dataset(), setup, str(tmp_path / 'run1'), backup,
                   verbose=0, callbacks=[_Interrupt(after_epoch=1)])
  assert os.listdir(backup), 'no backup was written before the interruption'

  recorder = _EpochRecorder()
  gan = training.train(_config(), SHAPE, _dataset(), setup, str(tmp_path / 'run2'), backup,
                       verbose=0, callbacks=[recorder])
  assert recorder.epochs == [2, 3]  # epochs 0 and 1 were done before the interruption
  assert int(gan.d_optimizer.iterations) == 4 * 3
  assert int(gan.g_optimizer.iterations) == 4 * 3
  assert not os.path.exists(backup) or not os.listdir(backup)  # removed once training completes


def test_sample_grids_every_epoch(tmp_path):
  setup = strategy_lib.choose_training_setup()
  training.train(_config(epochs=2, steps_per_epoch=1), SHAPE, _dataset(), setup,
                 str(tmp_path), verbose=0)
  grids = sorted(glob.glob(str(tmp_path / training.SAMPLES_DIR / 'epoch_*.png')))
  assert [os.path.basename(g) for g in grids] == ['epoch_0001.png', 'epoch_0002.png']
  decoded = tf.io.decode_png(tf.io.read_file(grids[0]))
  assert decoded.shape == (8 * 9 + 1, 8 * 9 + 1, 1)  # 64 samples, 8x8 with 1-pixel padding
  assert glob.glob(str(tmp_path / training.SAMPLES_DIR / 'events.out.tfevents.*'))
  assert glob.glob(str(tmp_path / 'train' / 'events.out.tfevents.*'))


def test_progress_in_a_log_file_is_a_line_per_epoch_without_redraws(tmp_path, capfd):
  # Keras redraws its bar with backspaces and carriage returns on every Linux, terminal or not
  # (tf_keras/src/utils/generic_utils.py, Progbar._dynamic_display); captured, stdout is no
  # terminal, as when `ganpipe run > log` runs the GAN trainer.
  setup = strategy_lib.choose_training_setup()
  training.train(_config(epochs=2, steps_per_epoch=3), SHAPE, _dataset(), setup, str(tmp_path))
  out = capfd.readouterr().out
  assert '\b' not in out and '\r' not in out
  assert [line.split(' - ')[0] for line in out.splitlines() if ' - ' in line] == ['3/3', '3/3']


def test_exported_generator_signatures(tmp_path):
  setup = strategy_lib.choose_training_setup()
  gan = training.train(_config(epochs=1, steps_per_epoch=1), SHAPE, _dataset(), setup,
                       str(tmp_path / 'run'), verbose=0)
  export_dir = str(tmp_path / 'export')
  training.export_generator(gan.generator, 8, export_dir)
  loaded = tf.saved_model.load(export_dir)

  noise = tf.random.normal([5, 8])
  images = loaded.signatures['serving_default'](noise=noise)['images'].numpy()
  assert images.shape == (5, *SHAPE) and images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  expected = (gan.generator(noise, training=False).numpy() + 1.0) / 2.0
  np.testing.assert_allclose(images, expected, atol=1e-6)

  generate = loaded.signatures['generate']
  first = generate(num_images=tf.constant(6), seed=tf.constant(7, tf.int64))
  again = generate(num_images=tf.constant(6), seed=tf.constant(7, tf.int64))
  other = generate(num_images=tf.constant(6), seed=tf.constant(8, tf.int64))
  np.testing.assert_array_equal(first['images'].numpy(), again['images'].numpy())
  assert not np.allclose(first['images'].numpy(), other['images'].numpy())
  assert first['png_bytes'].shape == (6,)
  decoded = tf.io.decode_png(first['png_bytes'][0]).numpy()
  np.testing.assert_allclose(decoded / 255.0, first['images'][0].numpy(), atol=1 / 255 + 1e-6)
  # A served model must not be asked for unbounded work by a request of a few bytes.
  for count, message in ((0, 'num_images must be positive'),
                         (signatures.MAX_GENERATED_IMAGES + 1,
                          f'num_images must be at most {signatures.MAX_GENERATED_IMAGES}')):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      generate(num_images=tf.constant(count), seed=tf.constant(7, tf.int64))


def test_fit_gets_the_dataset_without_the_autotune_thread(tmp_path, monkeypatch):
  # inputs.for_fit: otherwise fit() can return up to a minute after its last step.
  seen, fit = [], keras.Model.fit

  def spy(model, dataset, *args, **kwargs):
    seen.append(dataset.options().autotune.enabled)
    return fit(model, dataset, *args, **kwargs)

  monkeypatch.setattr(keras.Model, 'fit', spy)
  training.train(_config(epochs=1, steps_per_epoch=1), SHAPE, _dataset(),
                 strategy_lib.choose_training_setup(), str(tmp_path), verbose=0)
  assert seen == [False]


def test_grid_layout():
  grid = grid_lib.make_grid(np.ones((5, 2, 3, 1)), columns=3, padding=1)
  assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
  assert grid[1, 1, 0] == 255 and grid[0, 0, 0] == 0
  with pytest.raises(ValueError, match=r'expected \[n, h, w, c\]'):
    grid_lib.make_grid(np.ones((2, 3)))


def _batch_norms(model):
  return [layer for layer in model.layers
          if isinstance(layer, keras.layers.BatchNormalization)]


def test_one_replica_trains_with_plain_fused_batch_norm():
  # Synchronised batch normalisation is never fused in tf_keras and all-reduces even over one
  # replica, where there is nothing to synchronise with.
  setup = strategy_lib.choose_training_setup()
  assert setup.replicas == 1
  gan = training.build_gan(_config(architecture='dcgan'), (16, 16, 3), setup)
  norms = _batch_norms(gan.generator)
  assert len(norms) == 3
  assert [layer.synchronized for layer in norms] == [False, False, False]
  # The Dense layer's (rank 2) is never fused; the two after the transposed convolutions are.
  assert [layer.fused for layer in norms] == [False, True, True]


class _GeneratorWeights(keras.callbacks.Callback):
  """The generator's trainable weights before training and after every step."""

  def __init__(self):
    super().__init__()
    self.steps = []

  def _weights(self):
    return [w.numpy().copy() for w in self.model.generator.trainable_weights]

  def on_train_begin(self, logs=None):
    self.initial = self._weights()

  def on_train_batch_end(self, batch, logs=None):
    self.steps.append(self._weights())


@pytest.mark.parametrize('horizon', [0.0, 0.5])
def test_the_generator_ends_as_the_moving_average_of_its_weights(tmp_path, horizon):
  config = _config(epochs=2, steps_per_epoch=3, steps_per_execution=1, ema_horizon=horizon)
  recorder = _GeneratorWeights()
  keras.utils.set_random_seed(0)
  gan = training.train(config, SHAPE, _dataset(), strategy_lib.choose_training_setup(),
                       str(tmp_path / 'run'), verbose=0, callbacks=[recorder])
  assert len(recorder.steps) == 6
  final = [w.numpy() for w in gan.generator.trainable_weights]
  if not horizon:
    expected = recorder.steps[-1]
  else:
    momentum = 1 - 1 / (0.5 * 6)  # a time constant of half the 6 steps
    assert config.ema_momentum(hparams.DENSE) == pytest.approx(momentum)
    # Keras starts the average at the weights the optimizer first sees, and folds in each step's.
    expected = recorder.initial
    for weights in recorder.steps:
      expected = [momentum * a + (1 - momentum) * w for a, w in zip(expected, weights)]
    assert not all(np.allclose(f, w) for f, w in zip(final, recorder.steps[-1]))
  for got, want in zip(final, expected):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('architecture, shape', [('dense', (8, 8, 1)), ('dcgan', (8, 8, 3))])
def test_recalibrated_batch_norm_infers_as_the_batch_trains(architecture, shape):
  from ganpipe.models.gan import model as model_lib  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator(architecture, 8, shape, synchronized=False)
  noise = tf.random.stateless_normal([512, 8], seed=[training.SAMPLE_SEED, 1])
  before = generator(noise, training=False).numpy()
  training.recalibrate_batch_norm(generator, 8, count=512)
  inferred = generator(noise, training=False).numpy()
  # With training=True each layer normalises by the batch's own statistics: the moving ones now
  # equal them, so inference on that batch gives the same images.
  batch = generator(noise, training=True).numpy()
  np.testing.assert_allclose(inferred, batch, atol=2e-3)
  assert np.abs(before - batch).max() > 0.05  # the initial moving statistics (0, 1) did not
