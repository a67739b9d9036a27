"""Queries of the classifier and the generator, against an in-process fake TF Serving server."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ganpipe.app import queries
from ganpipe.serving import client as client_lib
from tests.serving import fake_tf_serving
from tests.serving.fake_tf_serving import CLASS_NAMES, IMAGE_SHAPE


@pytest.mark.parametrize('call, message', [
    (lambda c: queries.classify_images(c, 'classifier', []), 'no images to classify'),
    (lambda c: queries.generate(c, 'generator', 0, seed=1), 'num_images must be positive, got 0'),
])
def test_bad_arguments_fail_before_sending(fake, call, message):
  with client_lib.ServingClient(fake.target) as client, pytest.raises(ValueError, match=message):
    call(client)
  assert not fake.calls


def test_classify_images_answers_per_image_in_order(fake):
  with client_lib.ServingClient(fake.target) as client:
    predictions = queries.classify_images(client, 'classifier',
                                          [b'abc', b'abcd', b'abcde', b'abcdef'])
  assert predictions == [
      queries.Prediction(class_id=i % 3, class_name=CLASS_NAMES[i % 3],
                         probability=pytest.approx(0.8),
                         probabilities=pytest.approx(tuple(0.8 if k == i % 3 else 0.1
                                                           for k in range(3))))
      for i in range(4)]
  [request] = fake.requests('Predict')
  assert request.model_spec.signature_name == 'serving_default'
  assert not request.model_spec.HasField('version') and not request.model_spec.version_label
  assert list(tf.make_ndarray(request.inputs['images'])) == [b'abc', b'abcd', b'abcde', b'abcdef']


def test_generate_returns_float_images_and_one_png_each(fake):
  with client_lib.ServingClient(fake.target) as client:
    generated = queries.generate(client, 'generator', 3, seed=7)
  assert generated.images.dtype == np.float32
  np.testing.assert_array_equal(generated.images, fake_tf_serving.fake_images(3, 7))
  assert len(generated.png) == 3
  assert Image.open(io.BytesIO(generated.png[2])).size == (IMAGE_SHAPE[1], IMAGE_SHAPE[0])
  [request] = fake.requests('Predict')
  assert request.model_spec.signature_name == 'generate'


def test_an_answer_without_the_expected_output_is_a_clear_error(fake):
  fake.drop_output = 'class_names'
  with client_lib.ServingClient(fake.target) as client, pytest.raises(
      client_lib.ServingError, match="returned no 'class_names' output.*class_ids, probabilities"
  ) as raised:
    queries.classify_images(client, 'classifier', [b'a'])
  assert raised.value.code is None
