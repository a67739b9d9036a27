"""--enable_signature_method_name_check, and Classify and Regress on real SavedModels.

Off (TF Serving's default, which the conformance suite covers), a signature of the right shape
serves Predict, Classify and Regress whatever its method_name. On, each API takes only the
signatures whose method_name allows it. Warmup replays Regress records too.
"""

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from ganpipe.serving import config as config_lib
from ganpipe.serving import handlers
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models as fm
from tests.serving.flags import serve_options


@pytest.fixture(name='stub', scope='module')
def _stub(tmp_path_factory):
  """A server with --enable_signature_method_name_check=true on half_plus_two version 1."""
  root = tmp_path_factory.mktemp('methods')
  fm.build_half_plus_two(str(root / fm.HALF_PLUS_TWO / '1'), 1)
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config(fm.HALF_PLUS_TWO, str(root / fm.HALF_PLUS_TWO)),
      port=0, file_system_poll_wait_seconds=0,
      enable_signature_method_name_check=True)).start()
  channel = grpc.insecure_channel(f'127.0.0.1:{server.port}')
  yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
  channel.close()
  server.stop(grace=1)


def _examples_request(request_type, signature, xs=(1.0,)):
  request = request_type()
  request.model_spec.name = fm.HALF_PLUS_TWO
  request.model_spec.signature_name = signature
  for value in xs:
    request.input.example_list.examples.add().features.feature['x'].float_list.value.append(value)
  return request


def _error(call, request) -> grpc.RpcError:
  with pytest.raises(grpc.RpcError) as raised:
    call(request, timeout=30)
  assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
  return raised.value


def test_with_the_check_a_signature_serves_only_its_own_method(stub):
  expected = fm.half_plus_two_y(1, 1.0)
  classified = stub.Classify(_examples_request(classification_pb2.ClassificationRequest,
                                               fm.CLASSIFY_SIGNATURE), timeout=30)
  assert classified.result.classifications[0].classes[0].score == expected
  regressed = stub.Regress(_examples_request(regression_pb2.RegressionRequest,
                                             fm.REGRESS_SIGNATURE), timeout=30)
  assert regressed.result.regressions[0].value == expected
  # The TF2-style classifier says `predict`: it no longer classifies.
  error = _error(stub.Classify, _examples_request(classification_pb2.ClassificationRequest,
                                                  fm.PREDICT_METHOD_CLASSIFY_SIGNATURE))
  assert ('Expected classification signature method_name to be tensorflow/serving/classify. '
          'Was: tensorflow/serving/predict') in error.details()
  error = _error(stub.Regress, _examples_request(regression_pb2.RegressionRequest,
                                                 fm.CLASSIFY_SIGNATURE))
  assert 'Expected regression signature method_name to be tensorflow/serving/regress. ' \
         'Was: tensorflow/serving/classify' in error.details()


@pytest.mark.parametrize('signature', [fm.CLASSIFY_SIGNATURE, fm.REGRESS_SIGNATURE])
def test_with_the_check_predict_still_takes_classify_and_regress_signatures(stub, signature):
  example = _examples_request(classification_pb2.ClassificationRequest, signature, (5.0,))
  request = predict_pb2.PredictRequest()
  request.model_spec.name = fm.HALF_PLUS_TWO
  request.model_spec.signature_name = signature
  request.inputs['inputs'].CopyFrom(tf.make_tensor_proto(
      [example.input.example_list.examples[0].SerializeToString()], dtype=tf.string))
  (output,) = stub.Predict(request, timeout=30).outputs.values()
  assert tf.make_ndarray(output).tolist() == [[fm.half_plus_two_y(1, 5.0)]]


@pytest.mark.parametrize('flags, check', [
    ((), False), (('--enable_signature_method_name_check',), True),
    (('--enable_signature_method_name_check=true',), True),
    (('--enable_signature_method_name_check=false',), False)])
def test_the_method_name_check_flag_takes_tf_servings_forms(flags, check):
  assert serve_options(*flags).enable_signature_method_name_check == check


class _Version:
  """A loaded version stand-in whose one signature records what warmup sends it."""

  def __init__(self, warmup_file):
    self.warmup_file = warmup_file
    self.sent = []

  def signature(self, name):
    assert name == fm.REGRESS_SIGNATURE
    version = self

    class Recording:
      inputs = {'inputs': None}

      def __call__(self, inputs):
        version.sent.append(list(inputs['inputs']))
        return {'outputs': [[0.0]]}

    return Recording()


def test_warmup_replays_regress_records(tmp_path):
  request = _examples_request(regression_pb2.RegressionRequest, fm.REGRESS_SIGNATURE, (2.0,))
  path = str(tmp_path / 'warmup')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(prediction_log_pb2.PredictionLog(
        regress_log=prediction_log_pb2.RegressLog(request=request)).SerializeToString())
  service = handlers.ModelService(config_lib.single_model_config('m', str(tmp_path)), 0)
  version = _Version(path)
  assert service.warmup(version) == 1
  assert version.sent == [[request.input.example_list.examples[0].SerializeToString()]]
