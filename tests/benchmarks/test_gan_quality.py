"""benchmarks/gan_quality.py: the breakdown of the classifier score it reports."""

import math

import numpy as np
import pytest
from sklearn import datasets

from benchmarks import classifier_training
from benchmarks import gan_quality
from ganpipe.components.generator_evaluator import metrics


def test_the_breakdown_adds_up_to_the_score_the_evaluator_computes():
  probabilities = np.random.default_rng(0).dirichlet(np.full(10, 0.3), size=500)
  parts = gan_quality.breakdown(probabilities)
  assert parts['class_entropy'] - parts['prediction_entropy'] == pytest.approx(
      math.log(metrics.classifier_score(probabilities)), abs=1e-3)


def test_the_breakdown_tells_a_collapsed_generator_from_an_unsure_judge():
  sure_of_one_class = np.tile(np.eye(10)[3] * 0.99 + 0.001, (100, 1))
  parts = gan_quality.breakdown(sure_of_one_class)
  assert parts['class_entropy'] < 0.1 and parts['prediction_entropy'] < 0.1
  assert (parts['rarest_class_share'], parts['commonest_class_share']) == (0.0, 1.0)
  unsure_of_all = np.full((100, 10), 0.1)
  parts = gan_quality.breakdown(unsure_of_all)
  assert parts['class_entropy'] == parts['prediction_entropy'] == pytest.approx(math.log(10),
                                                                                abs=1e-4)


def test_the_report_names_the_settings_the_trainer_resolves_by_architecture():
  from ganpipe.models import hparams  # pylint: disable=import-outside-toplevel
  settings = gan_quality.resolved(hparams.GanConfig(), (28, 28, 1))
  assert settings == {
      'architecture': hparams.DCGAN, 'epochs': hparams.EPOCHS[hparams.DCGAN],
      'generator_learning_rate': hparams.GENERATOR_LEARNING_RATES[hparams.DCGAN],
      'discriminator_learning_rate': hparams.DISCRIMINATOR_LEARNING_RATES[hparams.DCGAN],
      'minibatch_stddev': hparams.MINIBATCH_STDDEV[hparams.DCGAN]}
  assert gan_quality.resolved(hparams.GanConfig(discriminator_learning_rate=1e-3),
                              (8, 8, 1))['discriminator_learning_rate'] == 1e-3


def test_a_folder_without_a_saved_model_is_refused_before_anything_is_trained(
    tmp_path, monkeypatch, capsys):
  monkeypatch.setattr('sys.argv', ['gan_quality.py', '--generator', str(tmp_path)])
  with pytest.raises(SystemExit) as exit_info:
    gan_quality.main()
  assert exit_info.value.code == 2
  assert f'no saved_model.pb in {tmp_path}' in capsys.readouterr().err


def test_an_exported_generator_is_judged_as_it_is_without_training(tmp_path, monkeypatch):
  # pylint: disable=import-outside-toplevel
  import json
  import tf_keras as keras
  from ganpipe.models.gan import model as model_lib
  from ganpipe.models.gan import training
  # pylint: enable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  untrained = model_lib.build_generator('dense', 16, (8, 8, 1), synchronized=False)
  export_dir = str(tmp_path / 'generator' / '1')
  training.export_generator(untrained, 16, export_dir)
  monkeypatch.setattr('sys.argv', ['gan_quality.py', '--dataset', 'digits', '--seeds', '4',
                                   '--generator', export_dir, '--out', str(tmp_path / 'out')])
  assert gan_quality.main() == 0
  with open(tmp_path / 'out' / 'gan_quality_digits.json') as f:
    result = json.load(f)
  [run] = result['runs']
  assert (run['generator'], run['seed']) == (export_dir, 4)
  assert 'train_seconds' not in run
  assert result['gan_config'] is None and result['gan_config_resolved'] is None
  # Each judge saw as many generated images as its real reference holds: the eval split, and the
  # held-out half of the digits. An untrained generator's noise is far from real digits by both.
  _, (x_eval, _) = classifier_training.load_split('digits')
  assert run['classifier']['images'] == len(x_eval)
  assert run['independent']['images'] == math.ceil(len(datasets.load_digits().target) / 2)
  assert run['classifier']['ratio'] < 0.6 and run['independent']['ratio'] < 0.6
  assert result['meets_goal'] is False
  with open(tmp_path / 'out' / 'gan_quality_digits.md') as f:
    assert f'| {export_dir} | {run["classifier"]["ratio"]:.2%} |' in f.read()


def test_an_exported_generator_draws_the_images_the_trained_one_would(tmp_path):
  # pylint: disable=import-outside-toplevel
  import tf_keras as keras
  from ganpipe.models import signatures
  from ganpipe.models.gan import model as model_lib
  from ganpipe.models.gan import training
  # pylint: enable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  generator = model_lib.build_generator('dense', 16, (8, 8, 1), synchronized=False)
  training.export_generator(generator, 16, str(tmp_path))
  count = signatures.MAX_GENERATED_IMAGES + 76  # more than one call of the signature takes
  exported = gan_quality.exported_generated(str(tmp_path), count, seed=3)
  assert exported.shape == (count, 8, 8, 1)
  np.testing.assert_allclose(exported, gan_quality.generated(generator, 16, count, seed=3),
                             atol=1e-5)


@pytest.mark.parametrize('argument, message', [
    ('2', 'gan.ema_horizon: must be within [0, 1]'),
    ('0.1,x', "could not convert string to float: 'x'"),
])
def test_a_horizon_gan_config_would_refuse_is_refused_before_anything_is_trained(
    argument, message, monkeypatch, capsys):
  monkeypatch.setattr('sys.argv', ['gan_quality.py', '--horizons', argument])
  with pytest.raises(SystemExit) as exit_info:
    gan_quality.main()
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_the_averages_match_the_optimizers_own_when_they_see_every_step(tmp_path):
  # Keras' average (tf_keras/src/optimizers/optimizer.py, _update_model_variables_moving_average)
  # is the exported generator's; with a look at every step, the callback's must be the same.
  from ganpipe.models import hparams  # pylint: disable=import-outside-toplevel
  (x_train, _), _ = classifier_training.load_split('digits')
  config = hparams.GanConfig(architecture=hparams.DENSE, epochs=2, steps_per_epoch=6,
                             steps_per_execution=1, ema_horizon=0.5)
  exported, unaveraged, others = gan_quality.train_generator(
      config, x_train, seed=5, run_dir=str(tmp_path), horizons=(0.5, 0.0))
  assert sorted(others) == [0.0, 0.5]
  for mine, keras_own in zip(others[0.5].get_weights(), exported.get_weights()):
    np.testing.assert_allclose(mine, keras_own, rtol=1e-5, atol=1e-6)
  # Horizon 0 is the last weights; its batch-normalisation statistics are computed again.
  for mine, last in zip(others[0.0].trainable_variables, unaveraged.trainable_variables):
    np.testing.assert_allclose(mine.numpy(), last.numpy(), rtol=1e-6, atol=1e-7)
  assert not all(np.allclose(a, b) for a, b in zip(others[0.0].trainable_variables,
                                                    exported.trainable_variables))


def test_a_run_with_horizons_reports_each_by_both_judges(tmp_path, monkeypatch):
  import json  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr('sys.argv', [
      'gan_quality.py', '--dataset', 'digits', '--seeds', '2', '--horizons', '0.1,0',
      '--set', 'gan.epochs=1', '--set', 'gan.steps_per_epoch=20', '--out', str(tmp_path)])
  assert gan_quality.main() == 0
  with open(tmp_path / 'gan_quality_digits.json') as f:
    [run] = json.load(f)['runs']
  for judge in ('classifier', 'independent'):
    assert sorted(run[judge]['horizons']) == ['0.0', '0.1']
    assert 0 < run[judge]['horizons']['0.1']['ratio'] < 2
  with open(tmp_path / 'gan_quality_digits.md') as f:
    text = f.read()
  assert (f'0.1: {run["classifier"]["horizons"]["0.1"]["ratio"]:.2%} / '
          f'{run["independent"]["horizons"]["0.1"]["ratio"]:.2%}') in text
