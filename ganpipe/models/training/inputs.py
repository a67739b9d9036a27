"""Reading transformed examples into tf.data datasets for training."""

from typing import List, Optional

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
