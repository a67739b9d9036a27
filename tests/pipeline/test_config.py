"""Configuration: defaults, validation messages, the small variant and command-line overrides."""

import dataclasses

import pytest

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides


def test_defaults_are_valid_and_frozen():
  config = config_lib.get_config()
  assert config.classifier.batch_size == 128
  assert config.classifier.activation == 'relu'
  # benchmarks/classifier_training.py: what takes Fashion-MNIST over 0.90 in 30 epochs.
  assert config.classifier.batch_norm and config.classifier.lr_schedule == 'cosine'
  assert config.classifier.early_stopping_patience == 0
  assert config.data.image_shape == (8, 8, 1)
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.classifier.batch_size = 64  # type: ignore[misc]


def test_small_variant_trains_less():
  small, full = config_lib.get_config(small=True), config_lib.get_config()
  assert small.classifier.epochs < full.classifier.epochs
  assert sum(small.classifier.hidden_units) < sum(full.classifier.hidden_units)
  assert small.classifier.batch_size == 32


@pytest.mark.parametrize('section, values, option, match', [
    ('classifier', {'train_steps': -5}, 'classifier.train_steps', 'must be a positive integer'),
    ('classifier', {'epochs': 0}, 'classifier.epochs', 'must be a positive integer'),
    ('classifier', {'eval_steps': -1}, 'classifier.eval_steps', 'must be a positive integer'),
    ('classifier', {'batch_size': 0}, 'classifier.batch_size', 'must be a positive integer'),
    ('classifier', {'activation': 'sigmoid'}, 'classifier.activation',
     "unknown activation 'sigmoid'.*relu, tanh"),
    ('classifier', {'optimizer': 'lbfgs'}, 'classifier.optimizer', "unknown optimizer 'lbfgs'"),
    ('classifier', {'dropout': 1.0}, 'classifier.dropout', r'within \[0, 1\)'),
    ('classifier', {'input_noise': -1.0}, 'classifier.input_noise', 'must be 0 or more'),
    ('classifier', {'learning_rate': 0.0}, 'classifier.learning_rate', 'must be positive'),
    ('classifier', {'hidden_units': ()}, 'classifier.hidden_units', 'at least one hidden'),
    ('classifier', {'hidden_units': (64, 0)}, 'classifier.hidden_units', 'positive integer'),
    ('evaluation', {'min_accuracy': 1.5}, 'evaluation.min_accuracy', r'within \[0, 1\]'),
    ('evaluation', {'min_accuracy': -0.1}, 'evaluation.min_accuracy', r'within \[0, 1\]'),
    ('evaluation', {'max_accuracy_drop': 2.0}, 'evaluation.max_accuracy_drop',
     r'within \[0, 1\]'),
    ('data', {'dataset': 'cifar100'}, 'data.dataset', "unknown dataset 'cifar100'"),
    ('data', {'dataset': 'folder'}, 'data.data_dir', 'needs a data folder'),
    ('data', {'dataset': 'npz'}, 'data.data_dir', 'the npz dataset needs a data folder'),
    ('data', {'on_wrong_size': 'pad'}, 'data.on_wrong_size', "unknown policy 'pad'"),
    ('data', {'formats': ('png', 'psd')}, 'data.formats', 'unknown image formats'),
    ('data', {'formats': ()}, 'data.formats', 'unknown image formats'),
    ('data', {'max_bad_fraction': -0.1}, 'data.max_bad_fraction', r'within \[0, 1\]'),
    ('data', {'channels': 2}, 'data.channels', 'must be 1 or 3'),
    ('data', {'image_size': (0, 8)}, 'data.image_size', 'two positive integers'),
    ('data', {'train_buckets': 0}, 'data.train_buckets', 'positive integer'),
    ('data', {'max_image_pixels': 63}, 'data.max_image_pixels', 'less than the 8x8 output'),
    ('data', {'dataset': 'folder', 'data_dir': '/d', 'span_pattern': 'span'},
     'data.span_pattern', r"'span' needs exactly one \{SPAN\}"),
    ('data', {'dataset': 'folder', 'data_dir': '/d', 'span_pattern': '{SPAN}/{SPAN}'},
     'data.span_pattern', 'needs exactly one'),
    ('data', {'dataset': 'folder', 'data_dir': '/d', 'span_pattern': '{SPAN}/{VERSION}/{VERSION}'},
     'data.span_pattern', r'more than one \{VERSION\}'),
    ('data', {'dataset': 'folder', 'data_dir': '/d', 'span_pattern': '/abs/{SPAN}'},
     'data.span_pattern', 'relative to --data.data_dir'),
    ('data', {'dataset': 'folder', 'data_dir': '/d', 'span_pattern': '../{SPAN}'},
     'data.span_pattern', 'relative to --data.data_dir'),
    ('data', {'train_spans': 0}, 'data.train_spans', 'positive integer'),
    ('data', {'max_label_drift': 1.5}, 'data.max_label_drift', r'within \[0, 1\]'),
    ('data', {'max_feature_drift': -1.0}, 'data.max_feature_drift', r'within \[0, 1\]'),
    ('beam', {'direct_num_workers': -1}, 'beam.direct_num_workers', 'must be 0 or more'),
    ('beam', {'direct_running_mode': 'threads'}, 'beam.direct_running_mode', 'unknown mode'),
    ('paths', {'serving_root': ' '}, 'paths.serving_root', 'non-empty path'),
    ('publish', {'hub_publisher': 'My_Team'}, 'publish.hub_publisher',
     'tfhub.dev publisher id uses lower-case letters'),
    ('publish', {'hub_module': 'a/b'}, 'publish.hub_module', 'use letters, digits'),
    ('publish', {'rollout': 'blue'}, 'publish.rollout', 'must be direct or canary'),
    ('publish', {'hub_asset_url': 'outputs/hub'}, 'publish.hub_asset_url',
     'must be an http:// or https:// URL'),
    ('publish', {'hub_asset_url': 'gs://bucket/hub'}, 'publish.hub_asset_url',
     'must be an http:// or https:// URL'),
    ('publish', {'hub_asset_url': 'https://github.com/me/models/raw/main'},
     'publish.hub_asset_url', "github.com's robots.txt"),
    ('publish', {'hub_asset_url': 'https://h.org/hub', 'hub_archive': False},
     'publish.hub_asset_url', 'the asset is the <version>.tar.gz archive'),
])
def test_invalid_values_name_the_option_and_the_fix(section, values, option, match):
  section_cls = type(getattr(config_lib.PipelineConfig(), section))
  with pytest.raises(config_lib.ConfigError, match=match) as raised:
    section_cls(**values)
  assert raised.value.option == option
  assert str(raised.value).startswith(f'{option}: ')
  assert f'Fix: pass --{option}' in str(raised.value)


def test_unknown_runner_is_rejected():
  with pytest.raises(config_lib.ConfigError, match="unknown runner 'spark'"):
    config_lib.PipelineConfig(runner='spark')


def test_every_field_has_a_dotted_flag():
  names = dict(config_overrides.field_paths())
  assert 'classifier.learning_rate' in names
  assert 'paths.pipeline_root' in names
  assert 'beam.extra_args' in names
  assert 'publish.hub_asset_url' in names
  assert 'seed' in names


@pytest.mark.parametrize('name, text, expected', [
    ('classifier.hidden_units', '128, 64', (128, 64)),
    ('classifier.learning_rate', '0.01', 0.01),
    ('classifier.train_steps', 'none', None),
    ('classifier.train_steps', '300', 300),
    ('enable_cache', 'false', False),
    ('data.image_size', '28,28', (28, 28)),
    ('beam.extra_args', '--runner=DataflowRunner,--project=p', ('--runner=DataflowRunner',
                                                                '--project=p')),
])
def test_parse_value(name, text, expected):
  hint = dict(config_overrides.field_paths())[name]
  assert config_overrides.parse_value(text, hint, name) == expected


def test_parse_value_rejects_wrong_types():
  hint = dict(config_overrides.field_paths())['classifier.batch_size']
  with pytest.raises(config_lib.ConfigError, match='expected int, got .abc.'):
    config_overrides.parse_value('abc', hint, 'classifier.batch_size')


def test_overrides_replace_fields_and_validate_again():
  config = config_overrides.with_overrides(config_lib.get_config(),
                                     {'classifier.activation': 'tanh', 'seed': 7})
  assert config.classifier.activation == 'tanh'
  assert config.seed == 7
  assert config.classifier.batch_size == config_lib.ClassifierConfig().batch_size  # untouched
  with pytest.raises(config_lib.ConfigError, match='classifier.activation'):
    config_overrides.with_overrides(config, {'classifier.activation': 'elu'})


def test_the_gan_budget_is_the_architectures_unless_set():
  # hparams.EPOCHS: the DCGAN gets twice the dense GAN's steps (gan_quality.py, Fashion-MNIST).
  digits = config_lib.get_config()
  fashion = config_overrides.with_overrides(digits, {'data.dataset': 'fashion-mnist'})
  assert digits.gan.epochs is None and fashion.gan.epochs is None
  assert digits.gan_epochs() == 40 and fashion.gan_epochs() == 80
  assert config_overrides.with_overrides(fashion, {'gan.epochs': 12}).gan_epochs() == 12
  assert config_overrides.with_overrides(fashion, {'gan.architecture': 'dense'}).gan_epochs() == 40
  with pytest.raises(config_lib.ConfigError, match='gan.epochs: must be a positive integer'):
    config_overrides.with_overrides(fashion, {'gan.epochs': 0})


def test_image_shape_follows_dataset_and_overrides():
  assert config_lib.DataConfig(dataset='folder', data_dir='/x').image_shape == (32, 32, 3)
  data = config_lib.DataConfig(dataset='folder', data_dir='/x', image_size=(16, 20), channels=1)
  assert data.image_shape == (16, 20, 1)
  assert config_lib.DataConfig(channels=3).image_shape == (8, 8, 3)
  assert config_lib.DataConfig(dataset='fashion-mnist').image_shape == (28, 28, 1)
  assert config_lib.DataConfig(dataset='idx', data_dir='/x').image_shape == (28, 28, 1)


def test_an_image_size_the_dcgan_cannot_take_fails_with_the_configuration():
  with pytest.raises(config_lib.ConfigError, match=r'data.image_size: the DCGAN .* got 25x25\. '
                     r'Fix: pass --data.image_size 24,24 or 28,28'):
    config_overrides.with_overrides(config_lib.get_config(), {
        'data.dataset': 'folder', 'data.data_dir': '/x', 'data.image_size': (25, 25)})
  # The dense GAN takes any size; asked for by name, it is the user's choice.
  config_overrides.with_overrides(config_lib.get_config(), {
      'data.dataset': 'folder', 'data.data_dir': '/x', 'data.image_size': (25, 25),
      'gan.architecture': 'dense'})
  config_overrides.with_overrides(config_lib.get_config(), {
      'data.dataset': 'folder', 'data.data_dir': '/x', 'data.image_size': (24, 28)})


def test_the_kubeflow_image_has_no_placeholder_default():
  assert config_lib.KubeflowConfig().image == ''
  with pytest.raises(config_lib.ConfigError, match='kubeflow.image'):
    config_lib.KubeflowConfig(image='registry/ganpipe :tag')


def _small(**overrides):
  return config_overrides.with_overrides(config_lib.get_config(small=True), {
      'data.dataset': 'folder', 'data.data_dir': '/x', **overrides})


@pytest.mark.parametrize('size', [(16, 16), (28, 28), (32, 32), (64, 64), (128, 128)])
def test_small_gives_the_dcgan_a_bounded_number_of_pixel_steps_at_any_size(size):
  gan = config_lib.small_for_image_size(_small(**{'data.image_size': size})).gan
  steps = gan.epochs * gan.steps_per_epoch
  # A DCGAN step costs about the same per pixel at every size (benchmarks/gan_training_time.py).
  assert steps * size[0] * size[1] <= 1.1 * config_lib.SMALL_DCGAN_PIXEL_STEPS
  assert gan.steps_per_epoch >= 1


def test_small_leaves_the_dense_gan_and_the_users_own_steps_alone():
  digits = config_lib.get_config(small=True)
  assert config_lib.small_for_image_size(digits) == digits
  chosen = _small(**{'data.image_size': (32, 32), 'gan.steps_per_epoch': 300})
  assert config_lib.small_for_image_size(chosen, keep={'gan.steps_per_epoch'}) == chosen


def test_spans_need_a_source_with_files_and_a_window_needs_spans():
  with pytest.raises(config_lib.ConfigError, match=r'^data.span_pattern: the digits dataset has '
                     r'no spans\. Fix: omit --data.span_pattern'):
    config_lib.DataConfig(span_pattern='span-{SPAN}')
  with pytest.raises(config_lib.ConfigError, match=r'^data.train_spans: 3 spans need a data '
                     r'folder in spans\. Fix: pass --data.span_pattern span-\{SPAN\}'):
    config_lib.DataConfig(dataset='folder', data_dir='/d', train_spans=3)
  data = config_lib.DataConfig(dataset='folder', data_dir='/d', span_pattern='day-{YYYY}{MM}{DD}',
                               train_spans=3)
  assert data.train_spans == 3
  assert config_lib.DataConfig(dataset='folder', data_dir='/d',
                               span_pattern='span-{SPAN:3}/v{VERSION}').span_pattern
