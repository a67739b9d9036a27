"""The hyperparameters' choices are the ones the model code builds, and nothing else."""

import pytest

from ganpipe.models import hparams
from ganpipe.models.classifier import model as classifier_model
from ganpipe.models.gan import model as gan_model


@pytest.mark.parametrize('activation', hparams.ACTIVATIONS)
def test_every_activation_the_config_allows_builds(activation):
  hparams.ClassifierConfig(activation=activation)
  model = classifier_model.build_classifier((8, 8, 1), 3, (4,), activation)
  assert model.get_layer(classifier_model.FEATURES_LAYER).activation.__name__ == activation


@pytest.mark.parametrize('optimizer', hparams.OPTIMIZERS)
def test_every_optimizer_the_config_allows_builds(optimizer):
  hparams.ClassifierConfig(optimizer=optimizer)
  assert classifier_model.make_optimizer(optimizer, 1e-3).learning_rate.numpy() == pytest.approx(
      1e-3)


def test_an_optimizer_the_config_refuses_the_model_refuses_too():
  with pytest.raises(hparams.ConfigError, match="unknown optimizer 'adagrad'"):
    hparams.ClassifierConfig(optimizer='adagrad')
  with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; expected one of adam, sgd, "
                     'rmsprop'):
    classifier_model.make_optimizer('adagrad', 1e-3)


@pytest.mark.parametrize('architecture', hparams.GAN_ARCHITECTURES)
def test_every_gan_architecture_the_config_allows_builds(architecture):
  hparams.GanConfig(architecture=architecture)
  generator = gan_model.build_generator(architecture, 8, (16, 16, 1))
  discriminator = gan_model.build_discriminator(architecture, (16, 16, 1))
  assert generator.output_shape == (None, 16, 16, 1)
  assert discriminator.output_shape == (None, 1)


@pytest.mark.parametrize('image_shape, architecture', [
    ((8, 8, 1), hparams.DENSE), ((28, 28, 1), hparams.DCGAN)])
def test_auto_resolves_to_an_architecture_by_image_size(image_shape, architecture):
  hparams.GanConfig(architecture=hparams.AUTO)
  assert gan_model.resolve_architecture(hparams.AUTO, image_shape) == architecture


def test_an_unknown_architecture_is_refused_by_both():
  with pytest.raises(hparams.ConfigError, match="unknown architecture 'vae'.*one of auto, dense, "
                     'dcgan'):
    hparams.GanConfig(architecture='vae')
  with pytest.raises(ValueError, match="unknown GAN architecture 'vae'; expected one of dense, "
                     'dcgan'):
    gan_model.build_generator('vae', 8, (16, 16, 1))


@pytest.mark.parametrize('architecture', [hparams.AUTO, *hparams.GAN_ARCHITECTURES])
@pytest.mark.parametrize('image_shape', [(8, 8, 1), (12, 10, 1), (15, 15, 3), (16, 16, 1),
                                         (25, 25, 3), (28, 30, 1), (32, 32, 3)])
def test_the_config_accepts_exactly_the_image_sizes_the_gan_builds(architecture, image_shape):
  resolved = gan_model.resolve_architecture(architecture, image_shape)
  try:
    gan_model.build_generator(resolved, 8, image_shape)
    gan_model.build_discriminator(resolved, image_shape)
    builds = True
  except ValueError:
    builds = False
  try:
    hparams.check_gan_image_shape(architecture, image_shape)
    accepted = True
  except hparams.ConfigError:
    accepted = False
  assert accepted == builds


def test_a_size_the_dcgan_cannot_take_suggests_a_resize_not_the_dense_gan():
  with pytest.raises(hparams.ConfigError) as raised:
    hparams.check_gan_image_shape(hparams.AUTO, (25, 25, 3))
  message = str(raised.value)
  assert message.startswith('data.image_size: the DCGAN (picked by --gan.architecture auto for '
                            'images of 16 pixels a side and up) needs a height and width that '
                            'are multiples of 4, got 25x25.')
  assert 'Fix: pass --data.image_size 24,24 or 28,28' in message
  assert 'dense' not in message
  with pytest.raises(ValueError, match='Resize the images to a multiple of 4 with '
                     '--data.image_size') as raised:
    gan_model.build_generator(hparams.DCGAN, 8, (25, 25, 3))
  assert 'dense' not in str(raised.value)


@pytest.mark.parametrize('field, value, message', [
    ('lr_schedule', 'step', "classifier.lr_schedule: unknown schedule 'step'. Fix: pass "
                            '--classifier.lr_schedule with one of constant, cosine.'),
    ('early_stopping_patience', -1, 'classifier.early_stopping_patience: must be an integer >= 0'),
    ('cache_mb', 1.5, 'classifier.cache_mb: must be an integer >= 0, got 1.5'),
    ('batch_norm', 'yes', "classifier.batch_norm: must be true or false, got 'yes'"),
])
def test_classifier_training_options_are_checked(field, value, message):
  with pytest.raises(hparams.ConfigError, match=message.replace('.', r'\.')):
    hparams.ClassifierConfig(**{field: value})



@pytest.mark.parametrize('value', [-0.1, 1.5, 'often'])
def test_the_generator_average_horizon_is_a_fraction_of_training(value):
  with pytest.raises(hparams.ConfigError, match=r'gan\.ema_horizon: must be within \[0, 1\]'):
    hparams.GanConfig(ema_horizon=value)


def test_the_average_horizon_is_counted_in_training_steps():
  config = hparams.GanConfig(epochs=40, steps_per_epoch=200, ema_horizon=0.1)
  assert config.ema_momentum(hparams.DCGAN) == pytest.approx(1 - 1 / 800)
  # A budget too small for the horizon averages nothing rather than something meaningless.
  assert hparams.GanConfig(epochs=1, steps_per_epoch=2,
                           ema_horizon=0.1).ema_momentum(hparams.DENSE) == 0.0
  # Without epochs, the horizon is a fraction of the architecture's budget.
  default = hparams.GanConfig(ema_horizon=0.1)
  assert default.ema_momentum(hparams.DCGAN) == pytest.approx(
      1 - 1 / (0.1 * hparams.EPOCHS[hparams.DCGAN] * default.steps_per_epoch))


@pytest.mark.parametrize('shape, architecture', [((8, 8, 1), hparams.DENSE),
                                                 ((16, 16, 3), hparams.DCGAN)])
def test_both_learning_rates_follow_the_resolved_architecture(shape, architecture):
  from ganpipe.models.gan import training  # pylint: disable=import-outside-toplevel
  from ganpipe.models.training import strategy  # pylint: disable=import-outside-toplevel
  config = hparams.GanConfig(architecture='auto')
  gan = training.build_gan(config, shape, strategy.choose_training_setup())
  assert float(gan.g_optimizer.learning_rate) == pytest.approx(
      hparams.GENERATOR_LEARNING_RATES[architecture])
  assert float(gan.d_optimizer.learning_rate) == pytest.approx(
      hparams.DISCRIMINATOR_LEARNING_RATES[architecture])
  # At step 0 the decayed rate is the initial one. One set by hand wins over the architecture's.
  chosen = training.build_gan(
      hparams.GanConfig(generator_learning_rate=3e-4, discriminator_learning_rate=7e-4), shape,
      strategy.choose_training_setup())
  assert float(chosen.g_optimizer.learning_rate) == pytest.approx(3e-4)
  assert float(chosen.d_optimizer.learning_rate) == pytest.approx(7e-4)


@pytest.mark.parametrize('name', ['generator_learning_rate', 'discriminator_learning_rate'])
def test_a_learning_rate_must_be_positive(name):
  with pytest.raises(hparams.ConfigError, match=f'gan.{name}: must be positive'):
    hparams.GanConfig(**{name: 0.0})


def _has_minibatch_stddev(gan):
  from ganpipe.models.gan import model  # pylint: disable=import-outside-toplevel
  return any(isinstance(layer, model.MinibatchStddev) for layer in gan.discriminator.layers)


@pytest.mark.parametrize('shape', [(8, 8, 1), (16, 16, 3)])
def test_the_minibatch_stddev_follows_the_resolved_architecture_unless_set(shape):
  from ganpipe.models.gan import training  # pylint: disable=import-outside-toplevel
  from ganpipe.models.training import strategy  # pylint: disable=import-outside-toplevel
  setup = strategy.choose_training_setup()
  architecture = hparams.resolve_architecture(hparams.AUTO, shape)
  default = training.build_gan(hparams.GanConfig(), shape, setup)
  assert _has_minibatch_stddev(default) == hparams.MINIBATCH_STDDEV[architecture]
  for chosen in (True, False):
    gan = training.build_gan(hparams.GanConfig(minibatch_stddev=chosen), shape, setup)
    assert _has_minibatch_stddev(gan) == chosen


def test_the_minibatch_stddev_switch_is_a_boolean():
  with pytest.raises(hparams.ConfigError, match='gan.minibatch_stddev: must be true or false'):
    hparams.GanConfig(minibatch_stddev='yes')


@pytest.mark.parametrize('name, value, message', [
    ('r1_gamma', -1.0, 'gan.r1_gamma: must be >= 0'),
    ('r1_gamma', True, 'gan.r1_gamma: must be >= 0'),
    ('discriminator_dropout', 1.0, r'gan.discriminator_dropout: must be within \[0, 1\)'),
    ('discriminator_dropout', -0.1, r'gan.discriminator_dropout: must be within \[0, 1\)')])
def test_the_discriminator_regularisers_are_checked(name, value, message):
  with pytest.raises(hparams.ConfigError, match=message):
    hparams.GanConfig(**{name: value})


def test_the_trainer_passes_the_discriminator_regularisers_on():
  from ganpipe.models.gan import training  # pylint: disable=import-outside-toplevel
  from ganpipe.models.training import strategy  # pylint: disable=import-outside-toplevel
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  setup = strategy.choose_training_setup()
  default = training.build_gan(hparams.GanConfig(), (16, 16, 1), setup)
  assert default.r1_gamma == 0.0
  assert any(isinstance(layer, keras.layers.Dropout) for layer in default.discriminator.layers)
  chosen = training.build_gan(hparams.GanConfig(r1_gamma=10.0, discriminator_dropout=0.0),
                              (16, 16, 1), setup)
  assert chosen.r1_gamma == 10.0
  assert not any(isinstance(layer, keras.layers.Dropout) for layer in chosen.discriminator.layers)
