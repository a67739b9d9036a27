"""The baseline resolver never offers the candidate as its own baseline."""

from tfx.types import standard_artifacts

from ganpipe.components import baseline_resolver


def _model(artifact_id):
  model = standard_artifacts.Model()
  model.id = artifact_id
  return model


def _blessing(model_id, blessed):
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_int_custom_property('current_model_id', model_id)
  blessing.set_int_custom_property('blessed', 1 if blessed else 0)
  return blessing


def _resolve(candidate, models, blessings):
  return baseline_resolver.LatestBlessedBaselineStrategy().resolve_artifacts(
      None, {'candidate': candidate, 'model': models, 'model_blessing': blessings})


def test_latest_blessed_model_other_than_the_candidate():
  models = [_model(1), _model(2), _model(3), _model(4)]
  blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False), _blessing(4, True)]
  result = _resolve([models[3]], models, blessings)
  assert [m.id for m in result['model']] == [2]
  assert result['model_blessing'][0].get_int_custom_property('current_model_id') == 2


def test_a_cached_candidate_that_is_the_only_blessed_model_has_no_baseline():
  model = _model(7)
  result = _resolve([model], [model], [_blessing(7, True)])
  assert result['model'] == [] and result['model_blessing'] == []


def test_nothing_blessed_yet():
  result = _resolve([_model(2)], [_model(1), _model(2)], [])
  assert result['model'] == []
