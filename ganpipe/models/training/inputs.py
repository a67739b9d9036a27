"""Reading transformed examples into tf.data datasets for training."""

from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx_bsl.public import tfxio

from ganpipe.models import features


def make_dataset(file_pattern: List[str], data_accessor: fn_args_utils.DataAccessor,
                 tf_transform_output: tft.TFTransformOutput, batch_size: int,
                 num_epochs: Optional[int] = None, shuffle: bool = True,
                 seed: Optional[int] = None) -> tf.data.Dataset:
  """(features, label) batches of transformed examples.

  Args:
    file_pattern: the split's files, as in `FnArgs.train_files`.
    data_accessor: `FnArgs.data_accessor`.
    tf_transform_output: the Transform output the files were written by.
    batch_size: examples per batch.
    num_epochs: passes over the data; None repeats for ever.
    shuffle: whether to shuffle.
    seed: the shuffle seed.
  """
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=features.LABEL_KEY,
                                     num_epochs=num_epochs, shuffle=shuffle, shuffle_seed=seed),
      tf_transform_output.transformed_metadata.schema)


def read_in_memory(dataset: tf.data.Dataset, max_bytes: int
                   ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
  """The images and labels of a finite (features, label) batch dataset, or None past `max_bytes`.

  Reading stops at the first batch that takes the total over `max_bytes`, so a split that does
  not fit costs at most `max_bytes` of memory and one partial read before the caller streams it.

  Args:
    dataset: (features, label) batches, as `make_dataset(..., num_epochs=1)` gives; features
      hold `features.IMAGE_KEY`.
    max_bytes: the most the images and labels together may take; 0 or less reads nothing.

  Returns:
    (images, labels) NumPy arrays of every example, in the dataset's order; None when they do
    not fit.
  """
  if max_bytes <= 0:
    return None
  images, labels, total = [], [], 0
  for batch_features, batch_labels in dataset.as_numpy_iterator():
    batch_images = batch_features[features.IMAGE_KEY]
    total += batch_images.nbytes + batch_labels.nbytes
    if total > max_bytes:
      return None
    images.append(batch_images)
    labels.append(batch_labels.reshape(-1))
  if not images:
    return None
  return np.concatenate(images), np.concatenate(labels)


def array_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int,
                  num_epochs: Optional[int] = 1, shuffle: bool = True,
                  seed: Optional[int] = None) -> tf.data.Dataset:
  """({IMAGE_KEY: images}, labels) batches of in-memory arrays, reshuffled every epoch.

  Shuffles and batches indices, then gathers each batch from the whole arrays held as one
  tensor, as Keras does for NumPy input (tf_keras/src/engine/data_adapter.py,
  TensorLikeDataAdapter.slice_inputs): one gather per batch, not one copy per example through a
  shuffle buffer, and no graph constant the size of the data.

  Args:
    images: [n, ...] images.
    labels: [n] labels.
    batch_size: examples per batch; the last batch of an epoch may be smaller.
    num_epochs: passes over the data; None repeats for ever.
    shuffle: whether to shuffle, anew each epoch.
    seed: the shuffle seed.
  """
  if len(images) != len(labels):
    raise ValueError(f'{len(images)} images but {len(labels)} labels')
  count = len(labels)
  indices = tf.data.Dataset.range(count)
  if shuffle:
    indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
  indices = indices.repeat(num_epochs).batch(batch_size)
  data = tf.data.Dataset.from_tensors((tf.convert_to_tensor(images),
                                       tf.convert_to_tensor(labels))).repeat()

  def gather(batch, arrays):
    return {features.IMAGE_KEY: tf.gather(arrays[0], batch)}, tf.gather(arrays[1], batch)

  return (tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def for_fit(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """`dataset` as our trainers hand it to `fit()`: without tf.data's autotuning thread.

  An iterator's destructor joins that thread (tensorflow/core/data/root_dataset.cc,
  RootDataset::Iterator: the `tf_data_model` thread running Model::OptimizeLoop), and the thread
  may first sleep out its whole optimisation period, which starts at 10 ms and doubles up to 60 s
  (tensorflow/core/framework/model.cc). `fit()` drops its iterator as it returns, so training
  could end up to a minute after its last step. In benchmarks/gan_throughput.py, 100 GAN steps
  that took 24 s returned after 40.95 s, which is 10 ms x (2^12 - 1), in 8 of 10 processes.

  With autotuning off, an AUTOTUNE map runs min(16, cores) calls at once (tf.data's
  GetAutotuneDefaultParallelism, core/data/dataset_utils.cc) and an AUTOTUNE prefetch grows its
  buffer with its own PrefetchAutotuner: enough for these pipelines, which gather or parse
  batches far faster than the models train on them.
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.with_options(options)
