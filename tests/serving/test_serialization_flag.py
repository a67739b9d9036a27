"""--enable_serialization_as_tensor_content, as TF Serving 2.19 added it (model_servers/main.cc,
server.h; servables/tensorflow/predict_util.cc): off, Predict outputs fill the dtypes' repeated
fields (Tensor::AsProtoField); on, each output is its raw tensor_content (AsProtoTensorContent).
"""

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fixture_models as fm
from tests.serving.stubs import POLL, half_plus_two, predict_request


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp('serialization-models')
  fm.push_version(str(root / 'half_plus_two'), 1, half_plus_two(1))
  fm.push_version(str(root / 'string_length'), 1, fm.build_string_length)
  config_path = str(root / fm.CONFIG_FILE)
  fm.write_config(config_path, fm.server_config(
      [fm.model_config('half_plus_two', str(root / 'half_plus_two')),
       fm.model_config('string_length', str(root / 'string_length'))]))
  return config_path


@pytest.mark.parametrize('flags, as_tensor_content', [
    ([], False),
    (['--enable_serialization_as_tensor_content'], True),
    (['--enable_serialization_as_tensor_content=false'], False),
], ids=['default', 'on', 'off'])
def test_predict_outputs_are_serialized_as_the_flag_says(server_factory, models, flags,
                                                          as_tensor_content):
  server = server_factory.start(['--model_config_file', models, *POLL, *flags],
                                {'half_plus_two': [1], 'string_length': [1]}, name='serialization')
  try:
    with grpc.insecure_channel(server.grpc_target) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      y = stub.Predict(predict_request('half_plus_two', [[2.0], [4.0]]), timeout=30).outputs['y']
      request = predict_request('string_length', [[0.0]])
      request.inputs.pop('x')
      request.inputs['text'].CopyFrom(tf.make_tensor_proto([b'ab', b'\xff']))
      outputs = stub.Predict(request, timeout=30).outputs
  finally:
    server.process.terminate()
  # Either way the tensor is the same; only the fields that carry it differ. TensorFlow's own
  # parser reads both (make_ndarray cannot read strings from tensor_content).
  def parse(proto, dtype):
    return tf.io.parse_tensor(proto.SerializeToString(), dtype).numpy().tolist()
  assert parse(y, tf.float32) == [[fm.half_plus_two_y(1, 2.0)], [fm.half_plus_two_y(1, 4.0)]]
  assert parse(outputs['echo_bytes'], tf.string) == [b'ab', b'\xff']
  assert parse(outputs['length'], tf.int32) == [2, 1]
  if as_tensor_content:
    assert y.tensor_content and not y.float_val
    assert outputs['echo_bytes'].tensor_content and not outputs['echo_bytes'].string_val
    assert outputs['length'].tensor_content and not outputs['length'].int_val
  else:
    assert list(y.float_val) == [fm.half_plus_two_y(1, 2.0), fm.half_plus_two_y(1, 4.0)]
    assert not y.tensor_content
    assert list(outputs['echo_bytes'].string_val) == [b'ab', b'\xff']
    assert list(outputs['length'].int_val) == [2, 1]
