"""Queries of the classifier and the generator, against an in-process fake TF Serving server."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ganpipe.app import queries
from ganpipe.models import signatures
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


def test_generate_splits_a_large_request_into_calls_the_signature_takes(fake):
  count = 2 * signatures.MAX_GENERATED_IMAGES + 5
  with client_lib.ServingClient(fake.target) as client:
    generated = queries.generate(client, 'generator', count, seed=40)
  requests = fake.requests('Predict')
  asked = [(int(tf.make_ndarray(r.inputs['num_images'])), int(tf.make_ndarray(r.inputs['seed'])))
           for r in requests]
  assert asked == [(1024, 40), (1024, 41), (5, 42)]
  # Pinned to the version that was the latest at the start, so that one model makes them all.
  assert {r.model_spec.version.value for r in requests} == {1}
  np.testing.assert_array_equal(generated.images, np.concatenate([
      fake_tf_serving.fake_images(1024, 40), fake_tf_serving.fake_images(1024, 41),
      fake_tf_serving.fake_images(5, 42)]))
  assert len(generated.png) == count


def test_generate_in_one_call_is_unchanged_and_asks_for_no_version(fake):
  with client_lib.ServingClient(fake.target) as client:
    queries.generate(client, 'generator', signatures.MAX_GENERATED_IMAGES, seed=3)
  [request] = fake.requests('Predict')
  assert not request.model_spec.HasField('version')
  assert not fake.requests('GetModelStatus')


def test_generate_refuses_seeds_past_int64(fake):
  with client_lib.ServingClient(fake.target) as client, pytest.raises(
      ValueError, match='2049 images take 3 calls, with seeds 9223372036854775806 to '
      '9223372036854775808, past the largest int64 seed'):
    queries.generate(client, 'generator', 2049, seed=2**63 - 2)
  assert not fake.calls
