"""`ganpipe generate` beyond one call, scaled grids, and errors found before connecting."""

import argparse
from typing import List

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ganpipe.app import client_commands
from ganpipe.app import grids
from ganpipe.models.gan import grid as grid_lib
from tests.serving import fake_tf_serving


def _run(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(prog='ganpipe')
  client_commands.add_parsers(parser.add_subparsers(dest='command', required=True))
  args = parser.parse_args(argv)
  return args.handler(args)


def test_more_images_than_one_call_makes_are_asked_for_in_several(fake, tmp_path, capsys):
  out, images_dir = tmp_path / 'grid.png', tmp_path / 'images'
  assert _run(['generate', '--target', fake.target, '-n', '2100', '--seed', '5', '--out',
               str(out), '--images-dir', str(images_dir), '--scale', '1']) == 0
  assert capsys.readouterr().out.splitlines()[0].startswith(
      f'Wrote {out}: 2100 images of 4x5x1 in a 46x46 grid')
  seeds = [int(tf.make_ndarray(r.inputs['seed'])) for r in fake.requests('Predict')]
  assert seeds == [5, 6, 7]
  assert len(list(images_dir.iterdir())) == 2100
  with Image.open(out) as grid:
    expected = grid_lib.make_grid(np.concatenate([
        fake_tf_serving.fake_images(1024, 5), fake_tf_serving.fake_images(1024, 6),
        fake_tf_serving.fake_images(52, 7)]), columns=46)[..., 0]
    np.testing.assert_array_equal(np.asarray(grid), expected)


def test_an_extension_pillow_cannot_write_is_refused_before_connecting(tmp_path, capsys):
  # Nothing listens at this target: the command must not get as far as trying it.
  assert _run(['generate', '--target', '127.0.0.1:9', '--out', str(tmp_path / 'x.xyz')]) == 1
  err = capsys.readouterr().err
  assert err == (f"ganpipe: error: cannot write --out '{tmp_path / 'x.xyz'}': .xyz is not an "
                 'image format Pillow writes; use one of .png, .jpg, .jpeg, .bmp, .gif, .tiff, '
                 '.webp, or no extension for PNG\n')
  assert 'cannot connect' not in err


def test_an_unknown_model_is_answered_with_the_models_the_server_has(fake, tmp_path, capsys):
  assert _run(['generate', '--target', fake.target, '--model', 'nosuch', '--out',
               str(tmp_path / 'g.png')]) == 1
  assert capsys.readouterr().err.endswith(
      "Latest(nosuch). The server has no model 'nosuch'; it serves classifier, generator: "
      'pass --model with one of them\n')


def test_a_missing_version_of_a_served_model_is_not_called_a_missing_model(fake, tmp_path,
                                                                          capsys):
  assert _run(['generate', '--target', fake.target, '--version', '9', '--out',
               str(tmp_path / 'g.png')]) == 1
  err = capsys.readouterr().err
  assert err.endswith('Servable not found for request: Specific(generator, 9)\n')


def test_the_grid_is_scaled_to_a_readable_size_by_default(fake, tmp_path, capsys):
  out = tmp_path / 'grid.png'
  assert _run(['generate', '--target', fake.target, '-n', '4', '--seed', '3', '--out',
               str(out)]) == 0
  # 4x5 images: each pixel becomes a 16x16 block, so the shorter side reaches 64 pixels.
  assert 'each scaled 16x' in capsys.readouterr().out
  with Image.open(out) as grid:
    pixels = np.asarray(grid)
  images = fake_tf_serving.fake_images(4, 3)
  first = pixels[1:1 + 4 * 16, 1:1 + 5 * 16]
  np.testing.assert_array_equal(first, np.kron(
      np.round(images[0, ..., 0] * 255).astype(np.uint8), np.ones((16, 16), np.uint8)))


@pytest.mark.parametrize('height, width, scale, expected', [
    (8, 8, grids.AUTO, 8), (28, 28, grids.AUTO, 3), (32, 32, grids.AUTO, 2),
    (64, 64, grids.AUTO, 1), (8, 8, 2, 2), (200, 100, grids.AUTO, 1)])
def test_scale_for(height, width, scale, expected):
  assert grids.scale_for(height, width, scale) == expected


@pytest.mark.parametrize('flag, message', [('-1', 'must be from 0 (automatic) to 64, got -1'),
                                           ('big', "expected a whole number, got 'big'")])
def test_bad_scales_are_usage_errors(flag, message, capsys):
  with pytest.raises(SystemExit):
    _run(['generate', '--out', 'x.png', '--scale', flag])
  assert message in capsys.readouterr().err
