"""--grpc_channel_arguments: gRPC server arguments passed through, as in TF Serving."""

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ganpipe.serving import config as config_lib
from ganpipe.serving import server as server_lib
from tests.serving import fixture_models
from tests.serving.flags import serve_options


def test_channel_arguments_parse_as_tf_serving_parses_them():
  assert config_lib.parse_grpc_channel_arguments(
      'grpc.max_connection_age_ms=30000, grpc.http2.min_ping_interval_without_data_ms=5000,'
      'grpc.primary_user_agent=ganpipe,big=9999999999') == (
          ('grpc.max_connection_age_ms', 30000),
          ('grpc.http2.min_ping_interval_without_data_ms', 5000),
          ('grpc.primary_user_agent', 'ganpipe'),
          ('big', '9999999999'))  # Not a 32-bit integer: passed as a string, as TF Serving.
  assert config_lib.parse_grpc_channel_arguments('') == ()


@pytest.mark.parametrize('text', ['grpc.max_connection_age_ms', '=5', 'a=1,,b'])
def test_a_malformed_channel_argument_is_a_clear_error(text):
  bad = 'b' if text == 'a=1,,b' else text  # An empty item is skipped; 'b' has no value.
  with pytest.raises(config_lib.ConfigError, match=f"{bad!r} is not key=value"):
    serve_options('--grpc_channel_arguments', text)


def test_channel_arguments_reach_the_grpc_server_and_override_its_own(tmp_path):
  fixture_models.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  server = server_lib.ModelServer(config_lib.ServerOptions(
      model_config=config_lib.single_model_config('m', str(tmp_path / 'm')), port=0,
      file_system_poll_wait_seconds=0,
      grpc_channel_arguments=(('grpc.max_receive_message_length', 2048),))).start()
  try:
    with grpc.insecure_channel(f'127.0.0.1:{server.port}') as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

      def predict(rows):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = 'm'
        request.inputs['x'].CopyFrom(tf.make_tensor_proto([[1.0]] * rows, dtype=tf.float32))
        return stub.Predict(request, timeout=30)

      assert tf.make_ndarray(predict(10).outputs['y']).shape == (10, 1)
      # 1,000 floats are about 4 KB: over the 2 KiB the argument allows, under the server's own
      # --max_message_size_bytes default.
      with pytest.raises(grpc.RpcError) as raised:
        predict(1000)
      assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  finally:
    server.stop(grace=1)
