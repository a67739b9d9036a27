"""The classifier Trainer's training: the in-memory cache, early stopping and the schedule."""

import shutil

import numpy as np
import pytest
import tensorflow_transform as tft
import tf_keras as keras

from ganpipe.models import hparams
from ganpipe.models.classifier import training
from ganpipe.models.training import inputs
from tests import image_data

SHAPE = (8, 8, 1)


def _digits(count, offset=0):
  pixels, labels = image_data.digits_arrays(count, offset)
  return pixels[..., np.newaxis].astype(np.float32) / 255.0, labels.astype(np.int64)


def _datasets(tmp_path, cache_mb, **config):
  """4,000 train examples (1.01 MB as float32 pixels and int64 labels) and 500 eval (0.13 MB)."""
  train_images, train_labels = _digits(1297)
  train = (np.concatenate([train_images] * 3 + [train_images[:109]]),
           np.concatenate([train_labels] * 3 + [train_labels[:109]]))
  splits = (train, _digits(500, offset=1297))
  fn_args = image_data.write_transformed(str(tmp_path / 'data'), splits)
  config = hparams.ClassifierConfig(cache_mb=cache_mb, batch_size=500, **config)
  data = training.training_datasets(config, fn_args, tft.TFTransformOutput(
      fn_args.transform_output), seed=0)
  return data, splits


def _labels(dataset):
  return np.concatenate([labels.reshape(-1) for _, labels in dataset.as_numpy_iterator()])


@pytest.mark.parametrize('cache_mb, in_memory', [(2, ('train', 'eval')), (1, ('eval',)),
                                                 (0, ())])
def test_splits_are_held_in_memory_when_they_fit_the_budget(tmp_path, cache_mb, in_memory):
  data, (train, eval_split) = _datasets(tmp_path, cache_mb)
  assert data.in_memory == in_memory
  # The same examples either way: eval in file order, train in some order.
  np.testing.assert_array_equal(_labels(data.eval), eval_split[1])
  np.testing.assert_array_equal(np.sort(_labels(data.train)), np.sort(train[1]))


def test_held_splits_never_read_their_files_again(tmp_path):
  data, (train, _) = _datasets(tmp_path, cache_mb=2)
  shutil.rmtree(tmp_path / 'data' / 'examples')
  for _ in range(2):  # two epochs, from memory alone
    assert len(_labels(data.train)) == len(train[1])


@pytest.mark.parametrize('cache_mb', [2, 0])
def test_both_splits_reach_fit_without_the_autotune_thread(tmp_path, monkeypatch, cache_mb):
  # The streamed splits come from TFX's DataAccessor, whose options for_fit's must survive.
  data, _ = _datasets(tmp_path, cache_mb)
  seen = _spy_on_fit(monkeypatch)
  training.train(hparams.ClassifierConfig(hidden_units=(8,), epochs=1), SHAPE, 10, data.train,
                 data.eval, log_dir=None)
  (train_ds,), kwargs = seen
  assert train_ds.options().autotune.enabled is False
  assert kwargs['validation_data'].options().autotune.enabled is False


def _spy_on_fit(monkeypatch):
  """Records the arguments of every keras.Model.fit call, into the list it returns."""
  seen, fit = [], keras.Model.fit

  def spy(model, *args, **kwargs):
    seen.extend((args, kwargs))
    return fit(model, *args, **kwargs)

  monkeypatch.setattr(keras.Model, 'fit', spy)
  return seen


def test_train_steps_repeat_a_held_split(tmp_path):
  data, _ = _datasets(tmp_path, cache_mb=2, train_steps=3)
  assert len(list(data.train.take(20))) == 20  # 20 batches of 500 from 4,000 examples


def _fit(config, eval_labels_shift=0):
  images, labels = _digits(400)
  eval_labels = (labels + eval_labels_shift) % 10
  keras.utils.set_random_seed(0)
  model = training.train(config, SHAPE, 10, inputs.array_dataset(images, labels, 50, seed=0),
                         inputs.array_dataset(images, eval_labels, 200, shuffle=False),
                         log_dir=None)
  history = model.history.history
  final_loss = model.evaluate(images, eval_labels, batch_size=200, verbose=0)[0]
  return history, final_loss


def test_early_stopping_keeps_the_weights_of_the_best_eval_loss():
  # Eval labels that are all wrong: the eval loss is best after the first epoch, then worsens.
  config = hparams.ClassifierConfig(hidden_units=(32,), epochs=20, early_stopping_patience=2,
                                    learning_rate=1e-2, lr_schedule=hparams.CONSTANT)
  history, final_loss = _fit(config, eval_labels_shift=1)
  losses = history['val_loss']
  best = int(np.argmin(losses))
  assert len(losses) == best + 3 < 20  # stopped 2 epochs after the best
  assert final_loss == pytest.approx(losses[best], rel=1e-4)
  assert final_loss < losses[-1] - 0.1


def test_without_early_stopping_every_epoch_runs_and_the_last_weights_stay():
  config = hparams.ClassifierConfig(hidden_units=(32,), epochs=6, early_stopping_patience=0,
                                    learning_rate=1e-2, lr_schedule=hparams.CONSTANT)
  history, final_loss = _fit(config, eval_labels_shift=1)
  assert len(history['val_loss']) == 6
  assert final_loss == pytest.approx(history['val_loss'][-1], rel=1e-4)


def test_the_cosine_schedule_falls_from_the_rate_to_near_zero():
  rate = training.cosine_schedule(0.01, epochs=10)
  rates = [rate(epoch) for epoch in range(10)]
  assert rates[0] == pytest.approx(0.01) and rates[5] == pytest.approx(0.005)
  assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 0.0003


def test_training_follows_the_schedule():
  config = hparams.ClassifierConfig(hidden_units=(8,), epochs=4, lr_schedule=hparams.COSINE)
  history, _ = _fit(config)
  np.testing.assert_allclose(history['lr'], [training.cosine_schedule(1e-3, 4)(e)
                                             for e in range(4)], rtol=1e-5)
