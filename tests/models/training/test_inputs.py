"""Holding a split in memory: read once within a byte budget, then batched and reshuffled."""

import numpy as np
import pytest
import tensorflow as tf

from ganpipe.models import features
from ganpipe.models.training import inputs


def _batches(count: int, batch_size: int) -> tf.data.Dataset:
  images = np.arange(count * 4, dtype=np.float32).reshape(count, 2, 2, 1)
  labels = np.arange(count, dtype=np.int64).reshape(count, 1)  # [batch, 1], as tfxio gives
  return tf.data.Dataset.from_tensor_slices(({features.IMAGE_KEY: images}, labels)).batch(
      batch_size)


def test_reads_every_example_in_order_within_the_budget():
  # 10 examples of 4 float32 pixels and an int64 label: 10 * (16 + 8) = 240 bytes.
  images, labels = inputs.read_in_memory(_batches(10, 3), max_bytes=240)
  assert images.shape == (10, 2, 2, 1) and images.dtype == np.float32
  np.testing.assert_array_equal(labels, np.arange(10))
  np.testing.assert_array_equal(images[:, 0, 0, 0], np.arange(10) * 4)


@pytest.mark.parametrize('max_bytes', [239, 0, -1])
def test_gives_none_past_the_budget(max_bytes):
  assert inputs.read_in_memory(_batches(10, 3), max_bytes=max_bytes) is None


def test_stops_reading_at_the_batch_that_crosses_the_budget():
  read = []
  dataset = _batches(100, 10).map(lambda f, l: (f, tf.py_function(
      lambda x: read.append(1) or x, [l], tf.int64)))
  assert inputs.read_in_memory(dataset, max_bytes=24 * 25) is None
  assert len(read) <= 3 + 2  # the third batch crosses; prefetching may start a little more


def _epochs(dataset, count):
  labels = [np.concatenate([l.numpy() for _, l in dataset]) for _ in range(count)]
  return labels


def test_each_epoch_is_every_example_once_in_a_new_order():
  images = np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1)
  labels = np.arange(50, dtype=np.int64)
  dataset = inputs.array_dataset(images, labels, batch_size=8, seed=0)
  first, second = _epochs(dataset, 2)
  np.testing.assert_array_equal(np.sort(first), labels)
  np.testing.assert_array_equal(np.sort(second), labels)
  assert not np.array_equal(first, second) and not np.array_equal(first, labels)
  for batch_features, batch_labels in dataset:
    # Images stay paired with their labels through the shuffle.
    np.testing.assert_array_equal(batch_features[features.IMAGE_KEY][:, 0, 0, 0],
                                  batch_labels.numpy().astype(np.float32))
  assert [len(l) for _, l in dataset] == [8] * 6 + [2]


def test_unshuffled_keeps_the_order_and_repeats_for_ever_without_epochs():
  labels = np.arange(5, dtype=np.int64)
  images = np.zeros((5, 1, 1, 1), np.float32)
  np.testing.assert_array_equal(
      _epochs(inputs.array_dataset(images, labels, 2, shuffle=False), 1)[0], labels)
  endless = inputs.array_dataset(images, labels, 2, num_epochs=None, shuffle=False)
  taken = np.concatenate([l.numpy() for _, l in endless.take(6)])
  np.testing.assert_array_equal(taken, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])


def test_images_and_labels_must_pair_up():
  with pytest.raises(ValueError, match='5 images but 4 labels'):
    inputs.array_dataset(np.zeros((5, 1, 1, 1)), np.zeros(4), 2)


def test_for_fit_turns_off_the_autotune_thread_and_keeps_every_batch():
  # array_dataset maps and prefetches with AUTOTUNE, so autotuning would start its thread.
  images, labels = np.zeros((10, 2, 2, 1), np.float32), np.arange(10)
  dataset = inputs.array_dataset(images, labels, 4, shuffle=False)
  assert dataset.options().autotune.enabled is None  # None: on (tf.data.Options' default)
  prepared = inputs.for_fit(dataset)
  assert prepared.options().autotune.enabled is False
  np.testing.assert_array_equal(
      np.concatenate([batch for _, batch in prepared.as_numpy_iterator()]), labels)
