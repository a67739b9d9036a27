"""InfraValidator's executor on fake artifacts: good models are blessed with a stamped model whose
warmup requests the server replays; a corrupt one is not blessed, and that is no error."""

import os

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx import types
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from ganpipe.components.infra_validator import component
from ganpipe.components.infra_validator import executor
from ganpipe.serving import config as serving_config
from ganpipe.serving import handlers
from ganpipe.serving import servable


def _validate(root, out, model_dir, model_name, model_kind, with_examples=True, **params):
  model = standard_artifacts.Model()
  model.uri = str(root / model_dir)
  inputs = {'model': [model]}
  if with_examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(root / 'examples')
    examples.split_names = '["train", "eval"]'
    inputs['examples'] = [examples]
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(out / 'blessing')
  exec_properties = {executor.MODEL_NAME_KEY: model_name, executor.MODEL_KIND_KEY: model_kind,
                     executor.TIMEOUT_SECONDS_KEY: 120.0, executor.NUM_REQUESTS_KEY: 4,
                     executor.SERVING_BINARY_KEY: ''}
  exec_properties.update(params)
  executor.Executor().Do(inputs, {'blessing': [blessing]}, exec_properties)
  return blessing


def _replay_warmup(model_name, stamped):
  """Loads the stamped model as the server does, replaying its warmup file; returns the count."""
  service = handlers.ModelService(serving_config.single_model_config(model_name, stamped), 0)
  return service.warmup(servable.LoadedVersion(model_name, 1, stamped))


def _warmup_signatures(stamped):
  records = tf.data.TFRecordDataset(path_utils.warmup_file_path(stamped))
  logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
  return [log.predict_log.request.model_spec.signature_name for log in logs]


def _assert_blessed(blessing):
  assert blessing.get_int_custom_property('blessed') == 1
  assert blessing.get_int_custom_property('has_model') == 1
  assert sorted(os.listdir(blessing.uri)) == ['INFRA_BLESSED', 'stamped_model']
  assert os.path.getsize(os.path.join(blessing.uri, 'INFRA_BLESSED')) == 0
  assert blessing.get_string_custom_property('reason').startswith('passed: ')
  return path_utils.stamped_model_path(blessing.uri)


def test_a_good_classifier_is_blessed_with_a_warmed_up_model(pipeline_output, tmp_path):
  blessing = _validate(pipeline_output, tmp_path, 'classifier', 'classifier', 'classifier')
  stamped = _assert_blessed(blessing)
  assert '8 requests to serving_default, serving_examples answered well' in (
      blessing.get_string_custom_property('reason'))
  assert _warmup_signatures(stamped) == ['serving_default', 'serving_examples'] * 4
  assert _replay_warmup('classifier', stamped) == 8


def test_a_good_generator_is_blessed_with_a_warmed_up_model(pipeline_output, tmp_path):
  blessing = _validate(pipeline_output, tmp_path, 'generator', 'generator', 'generator',
                       with_examples=False)
  stamped = _assert_blessed(blessing)
  assert '9 requests to generate, serving_default answered well' in (
      blessing.get_string_custom_property('reason'))
  assert _warmup_signatures(stamped) == ['serving_default', 'generate'] * 4 + ['generate']
  assert _replay_warmup('generator', stamped) == 9


def test_a_corrupt_model_is_not_blessed(pipeline_output, tmp_path):
  blessing = _validate(pipeline_output, tmp_path, 'corrupt', 'classifier', 'classifier')
  assert blessing.get_int_custom_property('blessed') == 0
  assert not blessing.has_custom_property('has_model')
  assert os.listdir(blessing.uri) == ['INFRA_NOT_BLESSED']
  reason = blessing.get_string_custom_property('reason')
  # The load error as TF Serving reports it: ReadBinaryProto's DATA_LOSS, naming the file.
  assert reason.startswith("model did not become AVAILABLE within 120 s: DATA_LOSS: Can't parse "
                           '/'), reason
  assert reason.endswith('/classifier/1/saved_model.pb as binary proto'), reason


def test_the_component_takes_the_pipeline_arguments():
  validator = component.InfraValidator(
      model=types.Channel(type=standard_artifacts.Model),
      examples=types.Channel(type=standard_artifacts.Examples),
      model_name='classifier', model_kind='classifier').with_id('classifier_infra_validator')
  assert validator.id == 'classifier_infra_validator'
  assert validator.exec_properties == {
      'model_name': 'classifier', 'model_kind': 'classifier', 'timeout_seconds': 120.0,
      'num_requests': 8, 'serving_binary': ''}
  assert validator.outputs['blessing'].type == standard_artifacts.InfraBlessing
  with pytest.raises(ValueError, match="model_kind must be one of classifier, generator, got "
                                       "'gan'"):
    component.InfraValidator(model=types.Channel(type=standard_artifacts.Model),
                             model_name='generator', model_kind='gan')
