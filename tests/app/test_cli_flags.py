"""`ganpipe` flags: --verbose anywhere, whole flag names only, help for every config field."""

import re

import pytest

from ganpipe.app import cli
from ganpipe.pipeline import overrides as config_overrides


@pytest.mark.parametrize('argv', [
    ['--verbose', 'run', '--classifier.epochs', '0'],
    ['run', '--classifier.epochs', '0', '--verbose'],
    ['run', '--verbose', '--classifier.epochs', '0'],
])
def test_verbose_is_taken_before_or_after_the_subcommand(argv, capsys):
  assert cli.main(argv) == cli.EXIT_USAGE
  err = capsys.readouterr().err
  assert 'Traceback' in err and err.rstrip().endswith('Fix: pass --classifier.epochs with a '
                                                      'value >= 1.')


def test_without_verbose_an_error_is_one_line(capsys):
  assert cli.main(['run', '--classifier.epochs', '0']) == cli.EXIT_USAGE
  assert capsys.readouterr().err.count('\n') == 1


def test_every_subcommand_takes_verbose():
  # pylint: disable=protected-access
  parser = cli._build_parser()
  commands = next(a for a in parser._actions if a.dest == 'command')
  for name, subcommand in commands.choices.items():
    assert any('--verbose' in action.option_strings for action in subcommand._actions), name


@pytest.mark.parametrize('argv, flag', [
    (['run', '--classifier.epoch', '5'], '--classifier.epoch'),
    (['run', '--small', '--data.image', '28,28'], '--data.image'),
    (['--verb', 'status'], '--verb'),
    (['generate', '--out', 'x.png', '--num', '5'], '--num'),
    (['classify', '--batch', '3', 'a.png'], '--batch'),
    (['serve', '--model_base', '/models/m'], '--model_base'),
])
def test_abbreviated_flags_are_refused_by_every_parser(argv, flag, capsys):
  with pytest.raises(SystemExit) as exited:
    cli.main(argv)
  assert exited.value.code == cli.EXIT_USAGE
  err = capsys.readouterr().err
  assert re.search(rf'unrecognized arguments: .*{re.escape(flag)}|expected one argument', err)


def test_help_describes_every_configuration_flag(capsys):
  with pytest.raises(SystemExit):
    cli.main(['run', '--help'])
  help_text = ' '.join(capsys.readouterr().out.split())
  described = config_overrides.field_help()
  for name, _ in config_overrides.field_paths():
    text = ' '.join(described[name].rstrip('.').split())
    assert f'--{name} VALUE {text} (default: ' in help_text, name
  assert '--classifier.hidden_units VALUE the units of each hidden Dense layer, comma-separated ' \
         '(default: 512,256)' in help_text
  assert '--data.image_size VALUE' in help_text and '(default: none)' in help_text


def test_small_fits_the_gan_to_the_image_size_unless_told_otherwise():
  # pylint: disable=protected-access
  parser = cli._build_parser()
  folder = ['--data.dataset', 'folder', '--data.data_dir', '/x', '--data.image_size', '64,64']
  config = cli._config_from_args(parser.parse_args(['run', '--small', *folder]))
  assert config.gan.epochs * config.gan.steps_per_epoch < 100
  config = cli._config_from_args(parser.parse_args(
      ['run', '--small', *folder, '--gan.steps_per_epoch', '40']))
  assert config.gan.steps_per_epoch == 40
