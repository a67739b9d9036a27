"""The `ganpipe` command line: flags, help and one-line errors for bad input."""

import re
import subprocess
import sys

import pytest

from ganpipe.app import cli


@pytest.mark.parametrize('flags, message', [
    (['--data.dataset', 'imagenet'], "data.dataset: unknown dataset 'imagenet'"),
    (['--data.dataset', 'folder', '--data.data_dir', '/no/such/folder'],
     "data.data_dir: folder '/no/such/folder' does not exist"),
    (['--classifier.train_steps', '-5'], 'classifier.train_steps: must be a positive integer'),
    (['--classifier.activation', 'softplus'], "classifier.activation: unknown activation"),
    (['--data.dataset', 'idx'], 'data.data_dir: the idx dataset needs a data folder'),
    (['--data.on_wrong_size', 'crop'], "data.on_wrong_size: unknown policy 'crop'"),
    (['--data.max_bad_fraction', '2'], r'data.max_bad_fraction: must be within \[0, 1\]'),
    (['--evaluation.min_accuracy', '1.5'], r'evaluation.min_accuracy: must be within \[0, 1\]'),
    (['--evaluation.max_accuracy_drop', '-0.2'], 'evaluation.max_accuracy_drop: must be within'),
    (['--classifier.epochs', 'ten'], "classifier.epochs: expected int, got 'ten'"),
])
def test_bad_input_gives_one_line_naming_option_and_fix(capsys, flags, message):
  assert cli.main(['run', *flags]) == cli.EXIT_USAGE
  captured = capsys.readouterr()
  lines = captured.err.strip().splitlines()
  assert len(lines) == 1, captured.err
  assert lines[0].startswith('ganpipe: error: ')
  assert 'Fix: pass --' in lines[0]
  assert re.search(message, lines[0])
  assert 'Traceback' not in captured.err + captured.out


@pytest.mark.parametrize('option, path, in_the_way', [
    ('data.data_dir', 'a_file', None),
    ('paths.pipeline_root', 'a_file/pipeline', 'a_file'),
    ('paths.metadata_path', 'a_file/metadata.sqlite', 'a_file'),
    ('paths.serving_root', 'a_file', 'a_file'),
    ('paths.hub_root', 'a_file/deeper/hub', 'a_file'),
])
def test_a_file_where_a_folder_must_be_is_named_before_anything_runs(capsys, tmp_path, option,
                                                                       path, in_the_way):
  (tmp_path / 'a_file').write_text('x')
  flags = [f'--{option}', str(tmp_path / path)]
  if option == 'data.data_dir':
    flags += ['--data.dataset', 'folder']
  assert cli.main(['run', *flags]) == cli.EXIT_USAGE
  err = capsys.readouterr().err
  if in_the_way is None:
    assert f"{option}: folder '{tmp_path / path}' is a file, not a folder" in err
  else:
    assert (f"{option}: '{tmp_path / path}' cannot be written: "
            f"'{tmp_path / in_the_way}' is a file, not a folder") in err
  assert 'Traceback' not in err


def test_verbose_shows_the_traceback(capsys):
  assert cli.main(['--verbose', 'run', '--classifier.epochs', '0']) == cli.EXIT_USAGE
  assert 'Traceback' in capsys.readouterr().err


def test_status_without_a_run(capsys, tmp_path):
  code = cli.main(['status', '--paths.metadata_path', str(tmp_path / 'none.sqlite')])
  assert code == cli.EXIT_FAILED
  assert 'no run of pipeline' in capsys.readouterr().err


def test_help_lists_config_flags(capsys):
  with pytest.raises(SystemExit) as exited:
    cli.main(['run', '--help'])
  assert exited.value.code == 0
  out = capsys.readouterr().out
  assert '--classifier.learning_rate' in out and '--data.dataset' in out


def test_installed_console_script_exits_non_zero_without_traceback():
  result = subprocess.run([sys.executable, '-m', 'ganpipe.app.cli', 'run', '--data.dataset', 'x'],
                          capture_output=True, text=True, check=False, timeout=120)
  assert result.returncode == cli.EXIT_USAGE
  assert result.stderr.strip() == (
      "ganpipe: error: data.dataset: unknown dataset 'x'. Fix: pass --data.dataset with one of "
      'digits, fashion-mnist, folder, idx, npz, tfrecord.')


def test_missing_fashion_mnist_says_how_to_install(capsys, monkeypatch, tmp_path):
  # pylint: disable-next=import-outside-toplevel
  from ganpipe.components.image_example_gen.sources import builtin
  monkeypatch.setattr(builtin, 'FASHION_MNIST_DIR', str(tmp_path / 'not-installed'))
  assert cli.main(['run', '--data.dataset', 'fashion-mnist']) == cli.EXIT_USAGE
  err = capsys.readouterr().err.strip()
  assert err.startswith('ganpipe: error: data.dataset: Fashion-MNIST is not installed at ')
  assert 'sudo apt-get install dataset-fashion-mnist' in err and '--data.data_dir' in err


@pytest.mark.parametrize('statuses, code', [
    ({'image_example_gen': 'complete', 'drift_baseline_resolver': 'FAILED'}, cli.EXIT_FAILED),
    ({'image_example_gen': 'complete', 'drift_baseline_resolver': 'complete'}, 0),
])
def test_a_node_that_failed_without_an_error_fails_the_run(capsys, monkeypatch, statuses, code):
  from ganpipe.pipeline import run_summary, runner  # pylint: disable=import-outside-toplevel
  summary = run_summary.RunSummary('p', 'run-1', [run_summary.ComponentRun(node, status)
                                                  for node, status in statuses.items()])
  monkeypatch.setattr(runner, 'preflight', lambda config: None)
  monkeypatch.setattr(runner, 'run', lambda config: (summary, None))
  assert cli.main(['run']) == code
  err = capsys.readouterr().err
  assert ('ganpipe: error: drift_baseline_resolver failed; the run went on without it'
          in err) == (code != 0)
