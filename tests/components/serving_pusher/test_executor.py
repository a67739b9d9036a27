"""ServingPusher's executor on fake artifacts: blessings decide, the infra-validated model goes."""

import json
import os
import re

import pytest
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from ganpipe.components import versioning
from ganpipe.components.serving_pusher import executor as executor_lib


def _model(tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'trainer' / 'model')
  serving = os.path.join(model.uri, 'Format-Serving')
  os.makedirs(serving)
  with open(os.path.join(serving, 'saved_model.pb'), 'w') as f:
    f.write('trainer')
  return model


def _model_blessing(tmp_path, blessed):
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'evaluator')
  blessing.set_int_custom_property('blessed', int(blessed))
  if not blessed:
    blessing.set_string_custom_property('reason', 'distance 80 > 40')
  return blessing


def _infra_blessing(tmp_path, blessed, model='stamped', warmup='warmup'):
  """Laid out as the InfraValidator writes it: the model with its warmup under stamped_model/."""
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(tmp_path / 'infra' / model / warmup)
  stamped = os.path.join(blessing.uri, 'stamped_model')
  os.makedirs(os.path.join(stamped, 'assets.extra'))
  with open(os.path.join(stamped, 'saved_model.pb'), 'w') as f:
    f.write(model)
  with open(os.path.join(stamped, 'assets.extra', 'tf_serving_warmup_requests'), 'w') as f:
    f.write(warmup)
  blessing.set_int_custom_property('blessed', int(blessed))
  blessing.set_int_custom_property('has_model', 1)
  return blessing


def _push(tmp_path, model_blessing, infra_blessing, keep=3):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pusher' / str(len(os.listdir(tmp_path))))
  inputs = {specs.MODEL_BLESSING_KEY: [model_blessing], specs.INFRA_BLESSING_KEY: [infra_blessing]}
  config = {'model_name': 'generator', 'serving_root': str(tmp_path / 'serving'),
            'keep_versions': keep}
  executor_lib.Executor().Do(inputs, {specs.PUSHED_MODEL_KEY: [pushed]},
                             {specs.PUSH_DESTINATION_KEY: '{}',
                              specs.CUSTOM_CONFIG_KEY: json.dumps(config)})
  return pushed


def test_blessed_model_is_pushed_with_its_warmup_requests(tmp_path):
  pushed = _push(tmp_path, _model_blessing(tmp_path, True), _infra_blessing(tmp_path, True))
  assert pushed.get_int_custom_property('pushed') == 1
  destination = pushed.get_string_custom_property('pushed_destination')
  assert os.path.dirname(destination) == str(tmp_path / 'serving' / 'generator')
  assert os.path.exists(os.path.join(destination, 'assets.extra', 'tf_serving_warmup_requests'))
  assert os.path.exists(tmp_path / 'serving' / 'models.config')


@pytest.mark.parametrize('model_ok, infra_ok, reason', [
    (False, True, r'model blessing \(distance 80 > 40\)'),
    (True, False, 'infra validation'),
])
def test_unblessed_model_is_not_pushed(tmp_path, model_ok, infra_ok, reason):
  pushed = _push(tmp_path, _model_blessing(tmp_path, model_ok), _infra_blessing(tmp_path, infra_ok))
  assert pushed.get_int_custom_property('pushed') == 0
  assert pushed.get_string_custom_property('reason').startswith('not passed: ')
  assert re.search(reason, pushed.get_string_custom_property('reason'))
  assert not os.path.exists(tmp_path / 'serving' / 'generator')


def test_retention_applies_after_each_push(tmp_path):
  model_blessing = _model_blessing(tmp_path, True)
  for retrained in range(4):
    _push(tmp_path, model_blessing, _infra_blessing(tmp_path, True, model=f'model {retrained}'),
          keep=2)
  assert len(versioning.versions(str(tmp_path / 'serving' / 'generator'))) == 2


def test_the_model_already_pushed_is_not_pushed_again(tmp_path):
  model_blessing = _model_blessing(tmp_path, True)
  first = _push(tmp_path, model_blessing, _infra_blessing(tmp_path, True))
  destination = first.get_string_custom_property('pushed_destination')
  # Blessed again by a re-run in which only the classifier changed: the same model, with warmup
  # requests made again.
  again = _push(tmp_path, model_blessing, _infra_blessing(tmp_path, True, warmup='again'))
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_int_custom_property('unchanged') == 1
  assert again.get_string_custom_property('reason') == (
      f'version {os.path.basename(destination)} at {destination} already serves this model')
  assert os.listdir(tmp_path / 'serving' / 'generator') == [os.path.basename(destination)]
  changed = _push(tmp_path, model_blessing, _infra_blessing(tmp_path, True, model='retrained'))
  assert changed.get_int_custom_property('pushed') == 1
  assert not changed.has_custom_property('unchanged')
