"""The Trainer executor: FnArgs over every Examples artifact it is given (a window of spans)."""

import json

import numpy as np
import pytest
import tensorflow_transform as tft
from tfx.types import standard_artifacts

from ganpipe.components.trainer import executor
from ganpipe.models import hparams
from ganpipe.models.classifier import training
from tests import image_data


def _span(root, count, offset):
  pixels, labels = image_data.digits_arrays(count, offset)
  images = pixels[..., np.newaxis].astype(np.float32) / 255.0
  split = (images, labels.astype(np.int64))
  examples, graph = image_data.write_transformed_artifacts(root, [split, split])
  return examples, graph, labels


@pytest.mark.parametrize('cache_mb', [8, 0])  # held in memory, and streamed from the files
def test_the_classifier_trains_on_every_span_of_the_window(tmp_path, cache_mb):
  first, graph, first_labels = _span(str(tmp_path / 'span-1'), 30, 0)
  second, _, second_labels = _span(str(tmp_path / 'span-2'), 20, 100)
  # What the launcher passes for a window of two spans: two Examples, one transform graph.
  input_dict = {'examples': [first, second], 'transform_graph': [graph]}
  exec_properties = {'train_args': '{"splits": ["train"]}', 'eval_args': '{"splits": ["eval"]}',
                     'custom_config': json.dumps({'model_section': 'classifier'})}
  outputs = {'model': [standard_artifacts.Model()], 'model_run': [standard_artifacts.ModelRun()]}
  for key, [artifact] in outputs.items():
    artifact.uri = str(tmp_path / key)
  fn_args = executor.Executor()._GetFnArgs(input_dict, outputs, exec_properties)
  assert len(fn_args.train_files) == 2 and len(fn_args.eval_files) == 2
  config = hparams.ClassifierConfig(cache_mb=cache_mb, batch_size=7)
  data = training.training_datasets(config, fn_args, tft.TFTransformOutput(
      fn_args.transform_output), seed=0)
  for dataset in (data.train, data.eval):
    labels = np.concatenate([batch.reshape(-1) for _, batch in dataset
                             .as_numpy_iterator()])
    np.testing.assert_array_equal(np.sort(labels),
                                  np.sort(np.concatenate([first_labels, second_labels])))
