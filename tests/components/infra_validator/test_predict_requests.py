"""The requests: a classifier's eval images one more at a time, a generator's noise and seeds."""

import os

import numpy as np
import pytest
import tensorflow as tf

from ganpipe.components.infra_validator import predict_requests
from tests import image_data
from tests.components.infra_validator import conftest


def test_classifier_requests_grow_one_image_at_a_time(pipeline_output):
  examples = predict_requests.read_eval_examples(str(pipeline_output / 'examples'), 3)
  assert len(examples) == 3
  requests = predict_requests.classifier_requests('classifier', examples)
  assert [(r.model_spec.name, r.model_spec.signature_name, predict_requests.batch_size(r))
          for r in requests] == [
              ('classifier', name, size) for size in (1, 2, 3)
              for name in ('serving_default', 'serving_examples')]
  assert list(tf.make_ndarray(requests[5].inputs['examples'])) == examples
  first_png = tf.make_ndarray(requests[0].inputs['images'])[0]
  assert tf.io.decode_png(first_png).shape == conftest.SHAPE


def test_generator_requests_use_the_latent_size_and_repeat_a_seed():
  requests = predict_requests.generator_requests('generator', 5, 3)
  assert [(r.model_spec.signature_name, predict_requests.batch_size(r)) for r in requests] == [
      ('serving_default', 1), ('generate', 1), ('serving_default', 2), ('generate', 2),
      ('serving_default', 3), ('generate', 3), ('generate', 1)]
  assert tf.make_ndarray(requests[4].inputs['noise']).shape == (3, 5)
  assert requests[-1] == requests[1]
  assert tf.make_ndarray(requests[1].inputs['seed']).dtype == np.int64


def test_a_missing_or_empty_eval_split_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'no examples in .*/Split-eval/\*\.gz'):
    predict_requests.read_eval_examples(str(tmp_path), 4)
  os.makedirs(tmp_path / 'Split-eval')
  image_data.write_tfrecord(str(tmp_path / 'Split-eval' / 'data.gz'), [])
  with pytest.raises(FileNotFoundError, match='no examples in'):
    predict_requests.read_eval_examples(str(tmp_path), 4)
