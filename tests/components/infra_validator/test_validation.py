"""Infra validation: the answer checks, the requests, the server choice, and real validations of
broken models on ganpipe's server, whose process never outlives them."""

import io
import os
import stat
import sys
import time

import numpy as np
from PIL import Image
import psutil
import pytest
import tensorflow as tf

from components.infra_validator import validation
from serving import client as client_lib
from tests import image_data
from tests.components.infra_validator import conftest


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
  return {'images': images, 'png': np.array(pngs, dtype=object)}


def _executable(path, script):
  with open(path, 'w') as f:
    f.write('#!/bin/sh\n' + script)
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
  return str(path)


def test_a_well_formed_classifier_answer_passes():
  validation.check_classifier_answer(3, 4, _classifier_answer())


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
  with pytest.raises(validation.InvalidAnswer, match=message):
    validation.check_classifier_answer(3, 4, answer)


def test_ties_in_the_probabilities_accept_any_top_class():
  answer = _classifier_answer(count=1)
  answer['probabilities'] = np.array([[0.4, 0.4, 0.2]], np.float32)
  answer['class_ids'] = np.array([1], np.int64)
  validation.check_classifier_answer(0, 1, answer)


@pytest.mark.parametrize('images, message', [
    (np.full((2, 4, 4, 1), np.nan, np.float32), 'images are not all finite'),
    (np.full((2, 4, 4, 1), 1.5, np.float32), r'images are outside \[0, 1\]: from 1.5 to 1.5'),
    (np.zeros((2, 4, 4), np.float32), r'images have shape \[2, 4, 4\], expected \[2, \?, \?, \?\]'),
    (np.zeros((3, 4, 4, 1), np.float32), r'expected \[2, \?, \?, \?\]'),
    (np.zeros((2, 4, 4, 1), np.float64), 'images are float64, expected float32'),
])
def test_malformed_images_fail(images, message):
  with pytest.raises(validation.InvalidAnswer, match=message):
    validation.check_images(images, 2, 'images')


def test_pngs_must_decode_to_the_images_shape():
  answer = _generated(2)
  validation.check_pngs(answer['png'], answer['images'], 'request 1')
  with pytest.raises(validation.InvalidAnswer, match=r"png 0 of request 1 has shape \[4, 4, 1\], "
                                                     r"the image's is \[4, 4, 3\]"):
    validation.check_pngs(answer['png'], np.zeros((2, 4, 4, 3), np.float32), 'request 1')
  with pytest.raises(validation.InvalidAnswer, match='png 1 of request 1 is not a PNG'):
    validation.check_pngs(np.array([answer['png'][0], b'GIF89a'], dtype=object),
                          answer['images'], 'request 1')
  with pytest.raises(validation.InvalidAnswer, match='png 0 of request 1 does not decode'):
    validation.check_pngs(np.array([validation.PNG_SIGNATURE + b'junk'] * 2, dtype=object),
                          answer['images'], 'request 1')


def _generator_exchange(count=2):
  """Well-formed requests and answers, as `generator_requests` makes them."""
  requests = validation.generator_requests('generator', 5, count)
  answers = []
  for request in requests:
    size = validation.batch_size(request)
    seed = (int(tf.make_ndarray(request.inputs['seed']))
            if request.model_spec.signature_name == validation.GENERATE else 99)
    answers.append(_generated(size, seed))
  return requests, answers


def test_well_formed_generator_answers_pass():
  validation.check_answers(validation.GENERATOR, *_generator_exchange())


def test_the_same_seed_must_give_the_same_images():
  requests, answers = _generator_exchange()
  answers[-1] = _generated(1, seed=42)
  with pytest.raises(validation.InvalidAnswer, match=r"requests 1 and 4 \('generate' with seed "
                                                     r"0\) gave different images"):
    validation.check_answers(validation.GENERATOR, requests, answers)


def test_both_generator_signatures_must_give_the_same_image_shape():
  requests, answers = _generator_exchange()
  answers[0] = {'images': np.zeros((1, 6, 6, 1), np.float32)}
  with pytest.raises(validation.InvalidAnswer, match=r"different shapes: \[6, 6, 1\] from "
                                                     r"'serving_default', \[4, 4, 1\] from "
                                                     r"'generate'"):
    validation.check_answers(validation.GENERATOR, requests, answers)


def test_both_classifier_signatures_must_agree():
  example = tf.train.Example()
  example.features.feature['image'].bytes_list.value.append(b'png')
  requests = validation.classifier_requests('classifier', [example.SerializeToString()] * 2)
  answers = [_classifier_answer(validation.batch_size(r)) for r in requests]
  validation.check_answers(validation.CLASSIFIER, requests, answers)
  answers[3]['probabilities'][1] = [0.5, 0.2, 0.3]
  answers[3]['class_ids'][1] = 0
  with pytest.raises(validation.InvalidAnswer, match=r"requests 2 \('serving_default'\) and 3 "
                                                     r"\('serving_examples'\) gave the same images "
                                                     r'different class_ids: \[1, 1\] and \[1, 0\]'):
    validation.check_answers(validation.CLASSIFIER, requests, answers)


def test_classifier_requests_grow_one_image_at_a_time(pipeline_output):
  examples = validation.read_eval_examples(str(pipeline_output / 'examples'), 3)
  assert len(examples) == 3
  requests = validation.classifier_requests('classifier', examples)
  assert [(r.model_spec.name, r.model_spec.signature_name, validation.batch_size(r))
          for r in requests] == [
              ('classifier', name, size) for size in (1, 2, 3)
              for name in ('serving_default', 'serving_examples')]
  assert list(tf.make_ndarray(requests[5].inputs['examples'])) == examples
  first_png = tf.make_ndarray(requests[0].inputs['images'])[0]
  assert tf.io.decode_png(first_png).shape == conftest.SHAPE


def test_generator_requests_use_the_latent_size_and_repeat_a_seed():
  requests = validation.generator_requests('generator', 5, 3)
  assert [(r.model_spec.signature_name, validation.batch_size(r)) for r in requests] == [
      ('serving_default', 1), ('generate', 1), ('serving_default', 2), ('generate', 2),
      ('serving_default', 3), ('generate', 3), ('generate', 1)]
  assert tf.make_ndarray(requests[4].inputs['noise']).shape == (3, 5)
  assert requests[-1] == requests[1]
  assert tf.make_ndarray(requests[1].inputs['seed']).dtype == np.int64


def test_a_missing_or_empty_eval_split_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'no examples in .*/Split-eval/\*\.gz'):
    validation.read_eval_examples(str(tmp_path), 4)
  os.makedirs(tmp_path / 'Split-eval')
  image_data.write_tfrecord(str(tmp_path / 'Split-eval' / 'data.gz'), [])
  with pytest.raises(FileNotFoundError, match='no examples in'):
    validation.read_eval_examples(str(tmp_path), 4)


def _metadata(kind):
  return {signature: {'inputs': {name: {'shape': [None, 5]} for name in inputs},
                      'outputs': {name: {} for name in outputs}}
          for signature, (inputs, outputs) in validation.CONTRACTS[kind].items()}


def test_signature_contracts():
  for kind in validation.MODEL_KINDS:
    validation.check_signatures(kind, _metadata(kind))
  metadata = _metadata(validation.GENERATOR)
  assert validation.latent_dim_of(metadata) == 5
  del metadata['generate']
  metadata['__saved_model_init_op'] = {'inputs': {}, 'outputs': {}}  # not callable: not listed
  with pytest.raises(validation.InvalidAnswer,
                     match="signature 'generate' is missing; the model has: serving_default"):
    validation.check_signatures(validation.GENERATOR, metadata)
  metadata = _metadata(validation.CLASSIFIER)
  metadata['serving_examples']['inputs'] = {'inputs': {}}
  with pytest.raises(validation.InvalidAnswer, match=r"'serving_examples' takes inputs "
                                                     r"\['inputs'\], expected \['examples'\]"):
    validation.check_signatures(validation.CLASSIFIER, metadata)
  metadata = _metadata(validation.CLASSIFIER)
  del metadata['serving_default']['outputs']['class_ids']
  with pytest.raises(validation.InvalidAnswer, match="'serving_default' has no output 'class_ids'"):
    validation.check_signatures(validation.CLASSIFIER, metadata)
  metadata = _metadata(validation.GENERATOR)
  metadata['serving_default']['inputs']['noise']['shape'] = [None, None]
  with pytest.raises(validation.InvalidAnswer, match=r"'noise' .* has shape \[None, None\]"):
    validation.latent_dim_of(metadata)


def test_serving_binary_choice(tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))
  assert validation.choose_serving_binary('') == validation.ServingBinary('')
  own = validation.choose_serving_binary('').command('m', '/base', 0)
  assert own[:3] == [sys.executable, '-m', 'serving.server'] and '--port' in own
  tf_serving = _executable(tmp_path / 'tensorflow_model_server', 'exit 0\n')
  assert validation.choose_serving_binary('').path == tf_serving
  assert validation.ServingBinary(tf_serving).command('m', '/base', 8123) == [
      tf_serving, '--port=8123', '--model_name=m', '--model_base_path=/base']
  other = _executable(tmp_path / 'other_server', 'exit 0\n')
  assert validation.choose_serving_binary(other).path == other
  with pytest.raises(validation.ServerError, match="'/nowhere/server' is not an executable"):
    validation.choose_serving_binary('/nowhere/server')


@pytest.mark.parametrize('args, message', [
    (dict(kind='regressor'), "model_kind must be one of classifier, generator, got 'regressor'"),
    (dict(model_name='a/b'), "model_name must be a non-empty name without '/'"),
    (dict(timeout_seconds=0), 'must be positive, got 0 and 8'),
    (dict(num_requests=0), 'must be positive, got 120.0 and 0'),
])
def test_bad_arguments(tmp_path, args, message):
  arguments = dict(model_dir=str(tmp_path), model_name='m', kind='generator')
  arguments.update(args)
  with pytest.raises(ValueError, match=message):
    validation.validate(**arguments)


def test_a_model_without_saved_model_pb_is_not_blessed(tmp_path):
  result = validation.validate(str(tmp_path), 'generator', 'generator')
  assert not result.blessed
  assert result.reason == f'no SavedModel in {tmp_path}: saved_model.pb is missing'


@pytest.fixture
def servers(monkeypatch):
  """Records every model server process the test starts."""
  started = []

  class RecordingServer(validation.ModelServerProcess):

    def __enter__(self):
      started.append(super().__enter__())
      return started[-1]

  monkeypatch.setattr(validation, 'ModelServerProcess', RecordingServer)
  return started


def _gone(pid, timeout=5.0):
  """Killed: no process, or a zombie its (orphaned, reparented) parent has not reaped yet."""
  deadline = time.monotonic() + timeout  # SIGKILL takes effect asynchronously
  while True:
    try:
      if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
        return True
    except psutil.NoSuchProcess:
      return True
    if time.monotonic() > deadline:
      return False
    time.sleep(0.05)


def _assert_gone(servers, count=1):
  assert len(servers) == count
  for server in servers:
    assert not psutil.pid_exists(server.pid)  # killed and reaped


def test_a_server_that_exits_leaves_the_model_not_blessed(pipeline_output, tmp_path, servers):
  binary = _executable(tmp_path / 'server', 'echo "Failed to start server. Error: bad model"\n'
                                            'exit 3\n')
  result = validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'),
                               'generator', 'generator', serving_binary=binary)
  assert not result.blessed
  assert result.reason == ('model did not become AVAILABLE within 120 s: the server exited '
                           'with code 3: Failed to start server. Error: bad model')
  _assert_gone(servers)


def test_a_server_that_never_answers_is_killed_at_the_time_limit(pipeline_output, tmp_path,
                                                                  servers):
  child = tmp_path / 'child.pid'
  binary = _executable(tmp_path / 'server', f'sleep 60 &\necho $! > {child}\nwait\n')
  result = validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'),
                               'generator', 'generator', serving_binary=binary,
                               timeout_seconds=1.5)
  assert not result.blessed
  assert result.reason.startswith('model did not become AVAILABLE within 1.5 s: GetModelStatus '
                                  'failed:')
  _assert_gone(servers)
  assert _gone(int(child.read_text()))  # the server's own child too


def test_the_server_is_killed_when_validation_raises(pipeline_output, tmp_path, servers,
                                                     monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError('status check broke')

  monkeypatch.setattr(client_lib.ServingClient, 'model_status', broken)
  binary = _executable(tmp_path / 'server', 'sleep 60\n')
  with pytest.raises(RuntimeError, match='status check broke'):
    validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'), 'generator',
                        'generator', serving_binary=binary)
  _assert_gone(servers)


def test_own_server_exiting_is_an_infrastructure_error(pipeline_output, servers, monkeypatch):
  monkeypatch.setattr(validation.ServingBinary, 'command', lambda *args: [
      sys.executable, '-c', 'print("ImportError: no serving"); raise SystemExit(4)'])
  with pytest.raises(validation.ServerError,
                     match='failed: the server exited with code 4: ImportError: no serving'):
    validation.validate(str(pipeline_output / 'generator' / 'Format-Serving'), 'generator',
                        'generator')
  _assert_gone(servers)


# On ganpipe's server: a few seconds each, for TensorFlow's import.
def test_a_generator_without_generate_is_not_blessed(pipeline_output, servers):
  result = validation.validate(str(pipeline_output / 'no_generate' / 'Format-Serving'),
                               'generator', 'generator')
  assert not result.blessed
  assert result.reason == "signature 'generate' is missing; the model has: serving_default"
  assert result.requests == ()
  _assert_gone(servers)


def test_probabilities_that_do_not_sum_to_one_are_not_blessed(pipeline_output, servers):
  result = validation.validate(str(pipeline_output / 'half_classifier' / 'Format-Serving'),
                               'classifier', 'classifier', str(pipeline_output / 'examples'),
                               num_requests=3)
  assert not result.blessed
  assert result.reason == 'probabilities of request 0 sum to 0.7 (image 0), not 1'
  _assert_gone(servers)
