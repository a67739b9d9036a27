"""--allow_version_labels_for_unavailable_models: a canary label set before its version loads."""

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import predict_pb2

from ganpipe.serving import config as config_lib
from ganpipe.serving import errors
from ganpipe.serving import handlers
from ganpipe.serving import serve_command
from tests.serving import fixture_models as fm
from tests.serving.flags import serve_options


@pytest.fixture(name='service')
def _service(tmp_path):
  fm.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  config = config_lib.single_model_config('m', str(tmp_path / 'm'))
  config.model_config_list.config[0].model_version_policy.all.SetInParent()
  service = handlers.ModelService(config, poll_wait_seconds=0,
                                  allow_labels_for_unavailable_models=True)
  service.start()
  service.base_path = tmp_path / 'm'
  yield service
  service.stop()


def _labelled(service, labels):
  config = config_lib.single_model_config('m', str(service.base_path))
  config.model_config_list.config[0].model_version_policy.all.SetInParent()
  config.model_config_list.config[0].version_labels.update(labels)
  return model_management_pb2.ReloadConfigRequest(config=config)


def _y_by_label(service, label):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'm'
  request.model_spec.version_label = label
  request.inputs['x'].CopyFrom(tf.make_tensor_proto([[2.0]], dtype=tf.float32))
  response = service.predict(request)
  return response.model_spec.version.value, tf.make_ndarray(response.outputs['y']).tolist()


def test_a_new_label_may_name_a_version_before_it_loads(service):
  service.reload_config(_labelled(service, {'stable': 1, 'canary': 2}))
  assert _y_by_label(service, 'stable') == (1, [[fm.half_plus_two_y(1, 2.0)]])
  with pytest.raises(errors.ServingError) as raised:
    _y_by_label(service, 'canary')
  assert raised.value.code == grpc.StatusCode.NOT_FOUND
  fm.build_half_plus_two(str(service.base_path / '2'), 2)  # The canary is pushed.
  service.manager.sync()
  assert _y_by_label(service, 'canary') == (2, [[fm.half_plus_two_y(2, 2.0)]])


def test_a_label_in_use_still_moves_only_to_a_version_that_serves(service):
  service.reload_config(_labelled(service, {'stable': 1}))
  with pytest.raises(errors.ServingError) as raised:
    service.reload_config(_labelled(service, {'stable': 3}))
  assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
  assert 'not currently available' in raised.value.message
  assert _y_by_label(service, 'stable') == (1, [[fm.half_plus_two_y(1, 2.0)]])


def test_the_flag_takes_tf_servings_name_and_is_off_by_default():
  assert not serve_options().allow_version_labels_for_unavailable_models
  assert serve_options('--allow_version_labels_for_unavailable_models=true'
                       ).allow_version_labels_for_unavailable_models


@pytest.mark.parametrize('allow', [False, True])
def test_a_startup_config_with_labels_needs_the_flag(tmp_path, allow):
  # ServerCore::ReloadConfig (model_servers/server_core.cc) checks labels before it adds the
  # models, so at start-up no version is available yet and every label needs the flag.
  fm.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  config = config_lib.single_model_config('m', str(tmp_path / 'm'))
  config.model_config_list.config[0].version_labels['stable'] = 1
  service = handlers.ModelService(config, poll_wait_seconds=0,
                                  allow_labels_for_unavailable_models=allow)
  try:
    if not allow:
      with pytest.raises(errors.ServingError) as raised:
        service.start()
      assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
      assert raised.value.message == ('Request to assign label to version 1 of model m, which is '
                                      'not currently available for inference')
    else:
      service.start()
      assert _y_by_label(service, 'stable') == (1, [[fm.half_plus_two_y(1, 2.0)]])
  finally:
    service.stop()


def test_serve_refuses_to_start_on_labels_without_the_flag(tmp_path, capsys):
  fm.build_half_plus_two(str(tmp_path / 'm' / '1'), 1)
  path = tmp_path / fm.CONFIG_FILE
  fm.write_config(str(path), fm.server_config(
      [fm.model_config('m', str(tmp_path / 'm'), labels={'stable': 1})]))
  status = serve_command.main(['--model_config_file', str(path), '--port', '0'])
  assert status == 1
  assert ('Request to assign label to version 1 of model m, which is not currently available '
          'for inference') in capsys.readouterr().err
