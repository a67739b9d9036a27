"""The answer checks: each answer on its own, then what the answers must agree on."""

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from ganpipe.components.infra_validator import answer_checks
from ganpipe.components.infra_validator import contract
from ganpipe.components.infra_validator import predict_requests
from ganpipe.models import signatures


def _classifier_answer(count=4, classes=3):
  probabilities = np.tile(np.array([0.2, 0.5, 0.3], np.float32)[:classes], (count, 1))
  return {'probabilities': probabilities, 'class_ids': np.full(count, 1, np.int64),
          'class_names': np.array([b'b'] * count, dtype=object)}


def _png(pixels):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _generated(count, seed=0, shape=(4, 4, 1)):
  images = np.random.default_rng(seed).uniform(size=(count, *shape)).astype(np.float32)
  pngs = [_png(np.round(image[..., 0] * 255).astype(np.uint8)) for image in images]
  return {'images': images, 'png_bytes': np.array(pngs, dtype=object)}


def test_a_well_formed_classifier_answer_passes():
  answer_checks.check_classifier_answer(3, 4, _classifier_answer())


@pytest.mark.parametrize('change, message', [
    (lambda a: a['probabilities'].__imul__(0.7), r'probabilities of request 3 sum to 0\.7 '),
    (lambda a: a['probabilities'].__setitem__((1, 0), np.nan),
     'probabilities of request 3 are not all finite'),
    (lambda a: a['probabilities'].__setitem__((0, slice(None)), [-0.5, 1.0, 0.5]),
     r'outside \[0, 1\]: from -0.5 to 1'),
    (lambda a: a['class_ids'].__setitem__(2, 0),
     'class_ids of request 3 are not the argmax of its probabilities: image 2 has class 0, '
     'argmax 1'),
    (lambda a: a['class_ids'].__setitem__(2, 7), 'image 2 has class 7'),
    (lambda a: a.update(class_ids=a['class_ids'].astype(np.int32)),
     'class_ids of request 3 are int32, expected int64'),
    (lambda a: a.update(probabilities=a['probabilities'][:3]),
     r'probabilities of request 3 have shape \[3, 3\], expected \[4, \?\]'),
    (lambda a: a.update(class_names=np.zeros(4)), 'class_names of request 3 are float64, '
     'expected string'),
    (lambda a: a.pop('class_names'), "request 3 returned no 'class_names' output"),
])
def test_malformed_classifier_answers_fail(change, message):
  answer = _classifier_answer()
  change(answer)
  with pytest.raises(contract.InvalidAnswer, match=message):
    answer_checks.check_classifier_answer(3, 4, answer)


def test_ties_in_the_probabilities_accept_any_top_class():
  answer = _classifier_answer(count=1)
  answer['probabilities'] = np.array([[0.4, 0.4, 0.2]], np.float32)
  answer['class_ids'] = np.array([1], np.int64)
  answer_checks.check_classifier_answer(0, 1, answer)


@pytest.mark.parametrize('images, message', [
    (np.full((2, 4, 4, 1), np.nan, np.float32), 'images are not all finite'),
    (np.full((2, 4, 4, 1), 1.5, np.float32), r'images are outside \[0, 1\]: from 1.5 to 1.5'),
    (np.zeros((2, 4, 4), np.float32), r'images have shape \[2, 4, 4\], expected \[2, \?, \?, \?\]'),
    (np.zeros((3, 4, 4, 1), np.float32), r'expected \[2, \?, \?, \?\]'),
    (np.zeros((2, 4, 4, 1), np.float64), 'images are float64, expected float32'),
])
def test_malformed_images_fail(images, message):
  with pytest.raises(contract.InvalidAnswer, match=message):
    answer_checks.check_images(images, 2, 'images')


def test_pngs_must_decode_to_the_images_shape():
  answer = _generated(2)
  answer_checks.check_pngs(answer['png_bytes'], answer['images'], 'request 1')
  with pytest.raises(contract.InvalidAnswer,
                     match=r"png_bytes 0 of request 1 has shape \[4, 4, 1\], "
                           r"the image's is \[4, 4, 3\]"):
    answer_checks.check_pngs(answer['png_bytes'], np.zeros((2, 4, 4, 3), np.float32), 'request 1')
  with pytest.raises(contract.InvalidAnswer, match='png_bytes 1 of request 1 is not a PNG'):
    answer_checks.check_pngs(np.array([answer['png_bytes'][0], b'GIF89a'], dtype=object),
                             answer['images'], 'request 1')
  with pytest.raises(contract.InvalidAnswer, match='png_bytes 0 of request 1 does not decode'):
    answer_checks.check_pngs(
        np.array([answer_checks.PNG_SIGNATURE + b'junk'] * 2, dtype=object), answer['images'],
        'request 1')


def _generator_exchange(count=2):
  """Well-formed requests and answers, as `generator_requests` makes them."""
  requests = predict_requests.generator_requests('generator', 5, count)
  answers = []
  for request in requests:
    size = predict_requests.batch_size(request)
    seed = (int(tf.make_ndarray(request.inputs['seed']))
            if request.model_spec.signature_name == signatures.GENERATE else 99)
    answers.append(_generated(size, seed))
  return requests, answers


def test_well_formed_generator_answers_pass():
  answer_checks.check_answers(signatures.GENERATOR, *_generator_exchange())


def test_the_same_seed_must_give_the_same_images():
  requests, answers = _generator_exchange()
  answers[-1] = _generated(1, seed=42)
  with pytest.raises(contract.InvalidAnswer, match=r"requests 1 and 4 \('generate' with seed "
                                                   r"0\) gave different images"):
    answer_checks.check_answers(signatures.GENERATOR, requests, answers)


def test_both_generator_signatures_must_give_the_same_image_shape():
  requests, answers = _generator_exchange()
  answers[0] = {'images': np.zeros((1, 6, 6, 1), np.float32)}
  with pytest.raises(contract.InvalidAnswer, match=r"different shapes: \[6, 6, 1\] from "
                                                   r"'serving_default', \[4, 4, 1\] from "
                                                   r"'generate'"):
    answer_checks.check_answers(signatures.GENERATOR, requests, answers)


def test_both_classifier_signatures_must_agree():
  example = tf.train.Example()
  example.features.feature['image'].bytes_list.value.append(b'png')
  requests = predict_requests.classifier_requests('classifier', [example.SerializeToString()] * 2)
  answers = [_classifier_answer(predict_requests.batch_size(r)) for r in requests]
  answer_checks.check_answers(signatures.CLASSIFIER, requests, answers)
  answers[3]['probabilities'][1] = [0.5, 0.2, 0.3]
  answers[3]['class_ids'][1] = 0
  with pytest.raises(contract.InvalidAnswer, match=r"requests 2 \('serving_default'\) and 3 "
                                                   r"\('serving_examples'\) gave the same images "
                                                   r'different class_ids: \[1, 1\] and \[1, 0\]'):
    answer_checks.check_answers(signatures.CLASSIFIER, requests, answers)
