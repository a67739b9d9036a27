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
