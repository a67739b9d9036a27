"""The `ganpipe classify`, `generate` and `models` commands, against a fake TF Serving."""

import argparse
import json
import pathlib
import subprocess
import sys
from typing import List

import grpc
import numpy as np
import pytest
from PIL import Image

from ganpipe.models.gan import grid as grid_lib
from ganpipe.app import client_commands
from tests.serving import fake_tf_serving


def _run(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(prog='ganpipe')
  client_commands.add_parsers(parser.add_subparsers(dest='command', required=True))
  args = parser.parse_args(argv)
  return args.handler(args)


def _write_images(tmp_path, sizes) -> List[str]:
  paths = []
  for index, size in enumerate(sizes):
    path = tmp_path / f'image{index}.png'
    path.write_bytes(b'x' * size)
    paths.append(str(path))
  return paths


def test_cli_classify_prints_path_class_and_probability(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [3, 4, 5])
  assert _run(['classify', '--target', fake.target, *paths]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [line.split() for line in lines] == [
      [paths[0], 'zero', '0.800'], [paths[1], 'one', '0.800'], [paths[2], 'two', '0.800']]


def test_cli_classify_json_and_version(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [4, 3])
  assert _run(['classify', '--target', fake.target, '--version', '1', '--json',
               '--batch-size', '1', *paths]) == 0
  assert json.loads(capsys.readouterr().out) == [
      {'path': paths[0], 'class_id': 1, 'class_name': 'one', 'probability': pytest.approx(0.8),
       'probabilities': pytest.approx([0.1, 0.8, 0.1])},
      {'path': paths[1], 'class_id': 0, 'class_name': 'zero', 'probability': pytest.approx(0.8),
       'probabilities': pytest.approx([0.8, 0.1, 0.1])}]
  requests = fake.requests('Predict')
  assert len(requests) == 2
  assert {request.model_spec.version.value for request in requests} == {1}


def test_cli_classify_missing_files_are_named_and_nothing_is_sent(fake, tmp_path, capsys):
  [good] = _write_images(tmp_path, [3])
  empty = tmp_path / 'empty.png'
  empty.write_bytes(b'')
  missing = str(tmp_path / 'missing.png')
  assert _run(['classify', '--target', fake.target, good, missing, str(empty)]) == 1
  captured = capsys.readouterr()
  assert captured.out == ''
  assert captured.err == (
      f"ganpipe: error: cannot read images '{missing}' (No such file or directory), "
      f"'{empty}' (empty file); nothing was sent\n")
  assert not fake.calls


def test_cli_classify_server_error_is_one_line(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [3])
  assert _run(['classify', '--target', fake.target, '--model', 'nope', *paths]) == 1
  err = capsys.readouterr().err
  assert err == (f"ganpipe: error: Predict for model 'nope', signature 'serving_default' at "
                 f'{fake.target} failed: NOT_FOUND: Servable not found for request: '
                 "Latest(nope). The server has no model 'nope'; it serves classifier, generator: "
                 'pass --model with one of them\n')


def test_cli_classify_names_the_files_the_server_rejects_and_answers_the_rest(fake, tmp_path,
                                                                             capsys):
  paths = _write_images(tmp_path, [3, 4, 5])
  fake.bad_images = (b'x' * 4,)
  assert _run(['classify', '--target', fake.target, *paths]) == 1
  captured = capsys.readouterr()
  assert [line.split() for line in captured.out.splitlines()] == [
      [paths[0], 'zero', '0.800'], [paths[2], 'two', '0.800']]
  assert captured.err == (
      f"ganpipe: error: the server rejected '{paths[1]}': INVALID_ARGUMENT: signature "
      "'serving_default' rejected the input: Unknown image file format. One of JPEG, PNG, GIF, "
      'BMP required.\n')
  # The batch, then each image alone to find the bad one.
  assert [len(request.inputs['images'].string_val) for request in fake.requests('Predict')] == [
      3, 1, 1, 1]

  assert _run(['classify', '--target', fake.target, '--json', *paths]) == 1
  answers = json.loads(capsys.readouterr().out)
  assert [answer['path'] for answer in answers] == paths
  assert answers[1] == {'path': paths[1], 'error': (
      "INVALID_ARGUMENT: signature 'serving_default' rejected the input: Unknown image file "
      'format. One of JPEG, PNG, GIF, BMP required.')}
  assert [answers[0]['class_name'], answers[2]['class_name']] == ['zero', 'two']


def test_cli_classify_a_request_rejected_for_every_image_alike_is_one_error(fake, tmp_path,
                                                                            capsys):
  paths = _write_images(tmp_path, [3, 4])
  fake.error = (grpc.StatusCode.INVALID_ARGUMENT, 'Unrecognized servable version label: nope')
  assert _run(['classify', '--target', fake.target, *paths]) == 1
  captured = capsys.readouterr()
  assert captured.out == ''
  assert captured.err == (
      f"ganpipe: error: Predict for model 'classifier', signature 'serving_default' at "
      f'{fake.target} failed: INVALID_ARGUMENT: Unrecognized servable version label: nope\n')


def test_cli_timeout_flag_sets_the_deadline(fake, tmp_path, capsys):
  # A deadline long enough for the call to reach the server on a loaded machine (0.1 s was
  # not, under CI), and a server slower than it.
  fake.sleep_seconds = 3.0
  paths = _write_images(tmp_path, [3])
  assert _run(['classify', '--target', fake.target, '--timeout', '1', *paths]) == 1
  assert 'DEADLINE_EXCEEDED: ' in capsys.readouterr().err
  assert len(fake.calls) == 1
  # The deadline the server was given. gRPC core sends it as a grpc-timeout header, and
  # Timeout::FromMillis (grpc src/core/lib/transport/timeout_encoding.cc) rounds 1,000-9,999 ms
  # up to a multiple of 10 ms: a client's 1,000.4 ms left goes out as '1010m'. So the server
  # may see up to 10 ms more than the 1 s asked for (CI once saw 1.0067 s).
  assert 0 < fake.deadlines[0] <= 1.01


def test_cli_generate_writes_the_grid_and_the_images(fake, tmp_path, capsys):
  out, images_dir = tmp_path / 'new' / 'grid.png', tmp_path / 'images'
  assert _run(['generate', '--target', fake.target, '-n', '5', '--seed', '7', '--out', str(out),
               '--images-dir', str(images_dir), '--scale', '1']) == 0
  assert capsys.readouterr().out.splitlines() == [
      f'Wrote {out}: 5 images of 4x5x1 in a 2x3 grid, each scaled 1x (19x11 pixels)',
      f'Wrote 5 PNGs to {images_dir}']
  with Image.open(out) as grid:
    assert (grid.format, grid.mode, grid.size) == ('PNG', 'L', (3 * (5 + 1) + 1, 2 * (4 + 1) + 1))
    expected = grid_lib.make_grid(fake_tf_serving.fake_images(5, 7), columns=3)[..., 0]
    np.testing.assert_array_equal(np.asarray(grid), expected)
  files = sorted(path.name for path in images_dir.iterdir())
  assert files == [f'image_00{i}.png' for i in range(5)]
  with Image.open(images_dir / 'image_004.png') as image:
    assert image.size == (5, 4)


def test_cli_generate_columns_and_label(fake, tmp_path, capsys):
  out = tmp_path / 'row.png'
  assert _run(['generate', '--target', fake.target, '-n', '3', '--columns', '10', '--label',
               'stable', '--out', str(out), '--scale', '1']) == 0
  assert '1x3 grid, each scaled 1x (19x6 pixels)' in capsys.readouterr().out
  with Image.open(out) as grid:
    assert grid.size == (19, 6)
  assert fake.requests('Predict')[0].model_spec.version_label == 'stable'


def test_cli_generate_unwritable_out(fake, tmp_path, capsys):
  (tmp_path / 'file').write_text('')
  out = tmp_path / 'file' / 'grid.png'
  assert _run(['generate', '--target', fake.target, '--out', str(out)]) == 1
  assert capsys.readouterr().err.startswith(f"ganpipe: error: cannot write --out '{out}': ")


def test_cli_generate_writes_the_format_its_extension_names(fake, tmp_path, capsys):
  for name, image_format in (('grid.jpg', 'JPEG'), ('grid.bmp', 'BMP'), ('grid', 'PNG')):
    assert _run(['generate', '--target', fake.target, '-n', '2', '--out',
                 str(tmp_path / name)]) == 0
    with Image.open(tmp_path / name) as grid:
      assert grid.format == image_format, name
  calls = len(fake.calls)
  assert _run(['generate', '--target', fake.target, '--out', str(tmp_path / 'grid.nope')]) == 1
  assert capsys.readouterr().err.endswith(
      f"ganpipe: error: cannot write --out '{tmp_path / 'grid.nope'}': .nope is not an image "
      'format Pillow writes; use one of .png, .jpg, .jpeg, .bmp, .gif, .tiff, .webp, or no '
      'extension for PNG\n')
  assert len(fake.calls) == calls  # refused before asking the server


def test_cli_generate_checks_where_it_writes_before_asking_the_server(fake, tmp_path, capsys):
  (tmp_path / 'a_file').write_text('')
  assert _run(['generate', '--target', fake.target, '--out', str(tmp_path)]) == 1
  assert capsys.readouterr().err == f"ganpipe: error: cannot write --out '{tmp_path}': Is a directory\n"
  assert _run(['generate', '--target', fake.target, '--out', str(tmp_path / 'grid.png'),
               '--images-dir', str(tmp_path / 'a_file')]) == 1
  assert capsys.readouterr().err == (
      f"ganpipe: error: cannot write to --images-dir '{tmp_path / 'a_file'}': Not a directory\n")
  assert not fake.calls and not (tmp_path / 'grid.png').exists()


@pytest.mark.parametrize('target, message', [
    ('localhost', "expected HOST:PORT, such as localhost:8500, got 'localhost'"),
    ('localhost:', "expected HOST:PORT, such as localhost:8500, got 'localhost:'"),
    (':8500', "expected HOST:PORT, such as localhost:8500, got ':8500'"),
    ('localhost:70000', "expected HOST:PORT, such as localhost:8500, got 'localhost:70000'"),
    ('::1:8500', "an IPv6 address goes in brackets, such as [::1]:8500, got '::1:8500'"),
])
def test_cli_target_without_a_usable_port_is_a_usage_error(target, message, capsys):
  with pytest.raises(SystemExit) as exited:
    _run(['models', '--target', target])
  assert exited.value.code == 2
  assert f'argument --target: {message}' in capsys.readouterr().err


@pytest.mark.parametrize('target', ['localhost:8500', '[::1]:8500', 'dns:///localhost:8500',
                                    'unix:/tmp/serving.sock'])
def test_cli_target_takes_host_port_ipv6_and_grpc_uris(target):
  parser = argparse.ArgumentParser(prog='ganpipe')
  client_commands.add_parsers(parser.add_subparsers(dest='command', required=True))
  assert parser.parse_args(['models', '--target', target]).target == target


@pytest.mark.parametrize('seed', ['9223372036854775808', '-9223372036854775809'])
def test_cli_generate_seed_must_fit_64_bits(seed, capsys):
  with pytest.raises(SystemExit) as exited:
    _run(['generate', '--out', 'grid.png', '--seed', seed])
  assert exited.value.code == 2
  assert f'argument --seed: must be a 64-bit integer, got {seed}' in capsys.readouterr().err


def test_cli_models_shows_versions_and_signatures(fake, capsys):
  assert _run(['models', '--target', fake.target, 'classifier']) == 0
  assert capsys.readouterr().out.splitlines() == [
      'classifier',
      '  version 2  AVAILABLE',
      '  version 1  END',
      '  signature serving_default (tensorflow/serving/predict)',
      '    in   images         string   [?]',
      '    out  class_ids      int64    [?]',
      '    out  class_names    string   [?]',
      '    out  probabilities  float32  [?, 3]']


def test_cli_models_json_reports_every_model_and_fails_for_bad_ones(fake, capsys):
  assert _run(['models', '--target', fake.target, '--json', 'generator', 'nope', 'broken']) == 1
  captured = capsys.readouterr()
  reports = json.loads(captured.out)
  assert [report['model'] for report in reports] == ['generator', 'broken']
  assert reports[0]['versions'] == [{'version': 1, 'state': 'AVAILABLE', 'error': ''}]
  assert reports[0]['signatures']['generate']['inputs']['seed'] == {'dtype': 'int64', 'shape': []}
  assert reports[1]['versions'][0]['error'].startswith('NOT_FOUND: Could not find SavedModel')
  assert reports[1]['signatures'] is None
  errors = captured.err.splitlines()
  assert len(errors) == 2
  assert errors[0].startswith("ganpipe: error: GetModelStatus for model 'nope' at ")
  assert errors[1].startswith("ganpipe: error: GetModelMetadata for model 'broken' at ")


def test_cli_missing_ca_cert(fake, tmp_path, capsys):
  ca = tmp_path / 'ca.pem'
  assert _run(['models', '--target', fake.target, '--ca-cert', str(ca)]) == 1
  assert capsys.readouterr().err == (
      f"ganpipe: error: cannot read --ca-cert '{ca}': No such file or directory\n")
  assert not fake.calls


def test_cli_client_certificate_flags_go_together_and_name_a_missing_file(fake, tmp_path, capsys):
  key = tmp_path / 'client-key.pem'
  assert _run(['models', '--target', fake.target, '--client-key', str(key)]) == 1
  assert capsys.readouterr().err == 'ganpipe: error: --client-cert and --client-key go together\n'
  cert = tmp_path / 'client.pem'
  cert.write_text('whatever\n')
  assert _run(['models', '--target', fake.target, '--client-cert', str(cert),
               '--client-key', str(key)]) == 1
  assert capsys.readouterr().err == (
      f"ganpipe: error: cannot read --client-key '{key}': No such file or directory\n")
  assert not fake.calls


@pytest.mark.parametrize('command', ['classify', 'generate', 'models'])
def test_cli_help_documents_target_and_timeout(command, capsys):
  with pytest.raises(SystemExit) as exited:
    _run([command, '--help'])
  assert exited.value.code == 0
  out = capsys.readouterr().out
  assert '--target HOST:PORT' in out and 'localhost:8500' in out and '--timeout SECONDS' in out


@pytest.mark.parametrize('argv, message', [
    (['classify', '--timeout', '0', 'a.png'], 'must be a positive number of seconds, got 0'),
    (['classify', '--version', '1', '--label', 'stable', 'a.png'], 'not allowed with argument'),
    (['generate', '-n', '0', '--out', 'x.png'], 'must be a positive integer, got 0'),
    (['generate', '--seed', '1'], 'the following arguments are required: --out'),
])
def test_cli_usage_errors(argv, message, capsys):
  with pytest.raises(SystemExit) as exited:
    _run(argv)
  assert exited.value.code == 2
  assert message in capsys.readouterr().err


def test_cli_parsing_and_missing_files_do_not_load_tensorflow(tmp_path):
  # TensorFlow takes seconds to import; `--help` and a mistyped path should not wait for it.
  script = f'''
import argparse, sys
from ganpipe.app import client_commands
parser = argparse.ArgumentParser(prog='ganpipe')
client_commands.add_parsers(parser.add_subparsers(dest='command', required=True))
args = parser.parse_args(['classify', {str(tmp_path / 'missing.png')!r}])
assert args.handler(args) == 1
print('tensorflow' in sys.modules, 'grpc' in sys.modules)
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, timeout=60, cwd=pathlib.Path(__file__).parents[2])
  assert result.stdout.split() == ['False', 'False']
  assert 'missing.png' in result.stderr
