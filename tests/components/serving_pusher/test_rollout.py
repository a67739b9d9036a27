"""Canary rollouts in models.config: each written config passes TF Serving's own label rules."""

import json
import os
from typing import Dict, Optional, Set

import pytest
from tensorflow_serving.config import model_server_config_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from ganpipe.components.serving_pusher import executor as executor_lib
from ganpipe.components.serving_pusher import publishing
from ganpipe.components.serving_pusher import rollout
from ganpipe.components.serving_pusher import rollout_steps
from tests.components.serving_pusher.test_executor import _infra_blessing, _model_blessing

Config = model_server_config_pb2.ModelServerConfig


def tf_serving_label_error(config: Config, available: Dict[str, Set[int]],
                           previous: Optional[Config] = None,
                           allow_unavailable: bool = False) -> Optional[str]:
  """The error TF Serving's reload of `config` fails with, or None.

  ServerCore::UpdateModelVersionLabelMap (tensorflow_serving/model_servers/server_core.cc,
  tensorflow/serving at 9d981c5c): ReloadConfig calls it before it adds the new config's
  versions, so `available` is what the previous config had loaded. A label must name an
  AVAILABLE version; --allow_version_labels_for_unavailable_models excuses a label only when
  the running config does not have it on another version.
  """
  old = {m.name: dict(m.version_labels)
         for m in (previous or Config()).model_config_list.config}
  for model in config.model_config_list.config:
    for label, version in model.version_labels.items():
      existing = old.get(model.name, {}).get(label)
      allow = allow_unavailable and (existing is None or existing == version)
      if not allow and version not in available.get(model.name, set()):
        return (f'Request to assign label to version {version} of model {model.name}, which '
                'is not currently available for inference')
  return None


def loaded(config: Config, serving_root) -> Dict[str, Set[int]]:
  """The versions a server has AVAILABLE once it has applied `config` (every load succeeds)."""
  found = {}
  for model in config.model_config_list.config:
    on_disk = sorted(int(v) for v in os.listdir(os.path.join(serving_root, model.name))
                     if v.isdigit())
    policy = model.model_version_policy
    if policy.WhichOneof('policy_choice') == 'specific':
      found[model.name] = set(policy.specific.versions) & set(on_disk)
    else:
      found[model.name] = set(on_disk[-1:])
  return found


class Server:
  """Applies each models.config as a server polling the file does, checking TF Serving's rules."""

  def __init__(self, serving_root):
    self.root = str(serving_root)
    self.config, self.available = Config(), {}
    self.applied = 0

  def poll(self):
    config = rollout.read_config(self.root)
    if config == self.config:
      return
    error = tf_serving_label_error(config, self.available, self.config)
    assert error is None, f'TF Serving would refuse config {self.applied + 1}: {error}'
    self.config, self.available = config, loaded(config, self.root)
    self.applied += 1


def _push(tmp_path, content, mode, name='classifier', keep=3):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pusher' / content)
  inputs = {specs.MODEL_BLESSING_KEY: [_model_blessing(tmp_path, True)],
            specs.INFRA_BLESSING_KEY: [_infra_blessing(tmp_path, True, model=content)]}
  config = {'model_name': name, 'serving_root': str(tmp_path / 'serving'), 'keep_versions': keep,
            'rollout': mode}
  executor_lib.Executor().Do(inputs, {specs.PUSHED_MODEL_KEY: [pushed]},
                             {specs.PUSH_DESTINATION_KEY: '{}',
                              specs.CUSTOM_CONFIG_KEY: json.dumps(config)})
  return int(pushed.get_string_custom_property('pushed_version'))


def _entry(tmp_path, name='classifier'):
  return rollout.model_entry(rollout.read_config(str(tmp_path / 'serving')), name)


def _policy(entry):
  return sorted(entry.model_version_policy.specific.versions)


def test_a_whole_rollout_writes_only_configs_tf_serving_accepts(tmp_path):
  root, server = str(tmp_path / 'serving'), Server(tmp_path / 'serving')
  v1 = _push(tmp_path, 'v1', 'direct')
  server.poll()
  v2 = _push(tmp_path, 'v2', 'canary')
  entry = _entry(tmp_path)
  assert _policy(entry) == [v1, v2] and not entry.version_labels  # step 1: no label yet
  server.poll()
  assert server.available['classifier'] == {v1, v2}
  result = rollout_steps.label(root, 'classifier', server.available['classifier'])
  assert result.labelled == {'stable': v1, 'canary': v2}  # step 2, once v2 is AVAILABLE
  server.poll()
  assert rollout_steps.promote(root, 'classifier', server.available['classifier']).after == (
      rollout.Rollout(v2, None, {'stable': v2}))
  server.poll()
  v3 = _push(tmp_path, 'v3', 'canary')
  server.poll()
  rollout_steps.label(root, 'classifier', server.available['classifier'])
  server.poll()
  assert dict(_entry(tmp_path).version_labels) == {'stable': v2, 'canary': v3}
  rollout_steps.rollback(root, 'classifier')
  server.poll()
  assert _policy(_entry(tmp_path)) == [v2]
  assert dict(_entry(tmp_path).version_labels) == {'stable': v2}
  assert not os.path.exists(os.path.join(root, 'classifier', str(v3)))
  assert server.applied == 7  # push, push, label, promote, push, label, rollback


def test_the_checker_refuses_a_label_written_with_the_push_it_names(tmp_path):
  _push(tmp_path, 'v1', 'direct')
  server = Server(tmp_path / 'serving')
  server.poll()
  v2 = _push(tmp_path, 'v2', 'canary')
  config = rollout.read_config(str(tmp_path / 'serving'))
  config.model_config_list.config[0].version_labels['canary'] = v2
  rollout.write_config(str(tmp_path / 'serving'), config)
  with pytest.raises(AssertionError, match=f'assign label to version {v2} of model classifier'):
    server.poll()


def test_label_leaves_a_version_that_is_not_available_unlabelled(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  _push(tmp_path, 'v2', 'canary')
  result = rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1})
  assert result.labelled == {'stable': v1}
  assert dict(_entry(tmp_path).version_labels) == {'stable': v1}


def test_promote_refuses_a_canary_that_is_not_available(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  v2 = _push(tmp_path, 'v2', 'canary')
  with pytest.raises(rollout.RolloutError, match=f'canary version {v2} .* is not AVAILABLE'):
    rollout_steps.promote(str(tmp_path / 'serving'), 'classifier', {v1})
  assert _policy(_entry(tmp_path)) == [v1, v2]


def test_promote_retires_the_old_version_under_the_retention_rule(tmp_path):
  root = str(tmp_path / 'serving')
  v1 = _push(tmp_path, 'v1', 'direct')
  v2 = _push(tmp_path, 'v2', 'canary', keep=1)
  assert os.path.exists(os.path.join(root, 'classifier', str(v1)))  # stable is never deleted
  rollout_steps.promote(root, 'classifier', {v1, v2})
  assert os.path.exists(os.path.join(root, 'classifier', str(v1)))  # the server may still use it
  assert rollout_steps.retain(root, 'classifier', keep=1) == [v1]
  assert sorted(os.listdir(os.path.join(root, 'classifier'))) == [str(v2)]


def test_rollback_and_promote_need_a_canary(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  with pytest.raises(rollout.RolloutError, match="model 'classifier' has no canary to roll back"):
    rollout_steps.rollback(str(tmp_path / 'serving'), 'classifier')
  with pytest.raises(rollout.RolloutError, match="model 'classifier' has no canary to promote"):
    rollout_steps.promote(str(tmp_path / 'serving'), 'classifier', {v1})


def test_a_second_canary_replaces_the_first_and_keeps_stable(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  v2 = _push(tmp_path, 'v2', 'canary')
  rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1, v2})
  v3 = _push(tmp_path, 'v3', 'canary')
  assert _policy(_entry(tmp_path)) == [v1, v3]
  assert dict(_entry(tmp_path).version_labels) == {'stable': v1}


def test_the_other_models_push_keeps_this_models_rollout(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  v2 = _push(tmp_path, 'v2', 'canary')
  rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1, v2})
  _push(tmp_path, 'g1', 'direct', name='generator')
  assert _policy(_entry(tmp_path)) == [v1, v2]
  assert dict(_entry(tmp_path).version_labels) == {'stable': v1, 'canary': v2}
  assert not _entry(tmp_path, 'generator').HasField('model_version_policy')


def test_the_other_models_push_during_a_canary_push_keeps_the_canary(tmp_path, monkeypatch):
  v1 = _push(tmp_path, 'v1', 'direct')
  _push(tmp_path, 'g1', 'direct', name='generator')
  push_version = publishing.push_version

  def push_with_the_generator_in_between(model_path, base_path, version=None):
    if base_path.endswith('classifier'):  # its config names the version; the folder is not there
      _push(tmp_path, 'g2', 'direct', name='generator')
    return push_version(model_path, base_path, version)
  monkeypatch.setattr(publishing, 'push_version', push_with_the_generator_in_between)
  v2 = _push(tmp_path, 'v2', 'canary')
  assert _policy(_entry(tmp_path)) == [v1, v2]


def test_a_direct_push_ends_a_rollout(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  v2 = _push(tmp_path, 'v2', 'canary')
  rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1, v2})
  _push(tmp_path, 'v3', 'direct')
  entry = _entry(tmp_path)
  assert not entry.HasField('model_version_policy') and not entry.version_labels


def test_a_first_canary_push_serves_alone(tmp_path):
  v1 = _push(tmp_path, 'v1', 'canary')
  assert not _entry(tmp_path).HasField('model_version_policy')
  assert rollout_steps.current(str(tmp_path / 'serving'), 'classifier') == rollout.Rollout(
      v1, None, {})


def test_labelling_a_directly_served_model_pins_its_stable_version(tmp_path):
  v1 = _push(tmp_path, 'v1', 'direct')
  rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1})
  assert _policy(_entry(tmp_path)) == [v1]
  assert dict(_entry(tmp_path).version_labels) == {'stable': v1}


def test_a_canary_push_names_its_version_in_the_config_before_the_folder_appears(
    tmp_path, monkeypatch):
  # Under the `latest` policy a server that saw the folder first would unload stable's version.
  v1 = _push(tmp_path, 'v1', 'direct')
  rollout_steps.label(str(tmp_path / 'serving'), 'classifier', {v1})
  seen = []
  push_version = publishing.push_version

  def checked_push(model_path, base_path, version=None):
    seen.append(_policy(_entry(tmp_path)))
    return push_version(model_path, base_path, version)
  monkeypatch.setattr(publishing, 'push_version', checked_push)
  v2 = _push(tmp_path, 'v2', 'canary')
  assert seen == [[v1, v2]]


def test_an_unknown_rollout_mode_is_refused():
  from ganpipe.components.serving_pusher import component  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="rollout must be one of direct, canary, got 'blue'"):
    component.ServingPusher('m', '/tmp/serving', model_blessing=None, rollout_mode='blue')
