"""`ganpipe generate`: images from the served generator, as one PNG grid and optionally files."""

import argparse
import math
import os
from typing import Optional

from ganpipe.app import client_common
from ganpipe.app import grids
from ganpipe.models import signatures


# What the error for an unknown extension suggests (Pillow writes a few dozen, most of them rare).
_COMMON_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tiff', '.webp')


def add_parser(commands) -> None:
  """Adds the `generate` subcommand to the subparsers action `commands`."""
  generate = commands.add_parser(
      'generate', help='generate images with the served GAN generator',
      description='Ask the served generator for images and write them as one PNG grid. The same '
      'seed and model version give the same images. The generate signature makes at most '
      f'{signatures.MAX_GENERATED_IMAGES:,} images a call, so more are asked for in calls of '
      f'{signatures.MAX_GENERATED_IMAGES:,}, call k (from 0) with seed SEED + k. '
      f'{client_common.CONNECTION_HELP}')
  generate.add_argument('--model', default='generator',
                        help='the model name on the server (default: %(default)s)')
  client_common.add_version_flags(generate)
  generate.add_argument('-n', '--num-images', type=client_common.positive_int, default=16,
                        metavar='N', help='how many images (default: %(default)s)')
  generate.add_argument('--seed', type=client_common.int64, default=0,
                        help='the noise seed, a 64-bit integer (default: %(default)s)')
  generate.add_argument('--out', required=True, metavar='FILE',
                        help='where to write the grid of all images; the format follows the '
                             'extension (.png, .jpg, .bmp, ...), PNG without one')
  generate.add_argument('--columns', type=client_common.non_negative_int, default=0, metavar='N',
                        help='images per grid row; 0 makes the grid square (default)')
  grids.add_scale_flag(generate)
  generate.add_argument('--images-dir', metavar='DIR',
                        help='also write each image, as the server encoded it, to '
                        'DIR/image_000.png, ... (at its own size, not scaled)')
  client_common.add_connection_flags(generate)
  generate.set_defaults(handler=_generate)


def grid_format(path: str) -> Optional[str]:
  """The Pillow format `path`'s extension names (None: no extension, so PNG).

  Raises:
    CommandError: an extension Pillow cannot write.
  """
  extension = os.path.splitext(path)[1].lower()
  if not extension:
    return None
  from PIL import Image  # pylint: disable=import-outside-toplevel  (tenths of a second)
  image_format = Image.registered_extensions().get(extension)
  if image_format is None or image_format not in Image.SAVE:
    writable = [ext for ext in _COMMON_EXTENSIONS
                if Image.registered_extensions().get(ext) in Image.SAVE]
    raise client_common.CommandError(
        f"cannot write --out '{path}': {extension} is not an image format Pillow writes; use "
        f'one of {", ".join(writable)}, or no extension for PNG')
  return image_format


def _generate(args: argparse.Namespace) -> int:
  # Where the answer goes is checked before anything loads or connects.
  try:
    if os.path.isdir(args.out):
      raise client_common.CommandError(f"cannot write --out '{args.out}': Is a directory")
    if args.images_dir and os.path.exists(args.images_dir) and not os.path.isdir(args.images_dir):
      raise client_common.CommandError(
          f"cannot write to --images-dir '{args.images_dir}': Not a directory")
    image_format = grid_format(args.out)
  except client_common.CommandError as error:
    client_common.print_error(str(error))
    return client_common.EXIT_FAILED
  return _generate_and_write(args, image_format)


@client_common.reports_errors
def _generate_and_write(args: argparse.Namespace, client_lib, image_format: Optional[str]) -> int:
  # pylint: disable=import-outside-toplevel
  from PIL import Image
  from ganpipe.app import queries  # TensorFlow, which the client has loaded already
  # pylint: enable=import-outside-toplevel
  with client_common.connect(args, client_lib) as client:
    try:
      generated = queries.generate(client, args.model, args.num_images, args.seed,
                                   version=args.version, version_label=args.label)
    except client_lib.ServingError as error:
      raise client_common.CommandError(client_common.with_models_hint(
          error, client, client_lib, args.model)) from None
    except ValueError as error:
      raise client_common.CommandError(str(error)) from None
  count, height, width, channels = generated.images.shape
  if channels not in (1, 2, 3, 4):
    raise client_common.CommandError(f'the generator returned images with {channels} channels; '
                                     'a PNG holds 1 to 4')
  columns = min(args.columns, count) if args.columns else math.ceil(math.sqrt(count))
  scale = grids.scale_for(height, width, args.scale)
  grid = grids.make_grid(generated.images, columns=columns, scale=scale)
  try:
    client_common.make_parent(args.out)
    # Pillow picks L, LA, RGB or RGBA from the array's shape.
    Image.fromarray(grid[..., 0] if channels == 1 else grid).save(
        args.out, format=image_format or 'PNG')
  except (OSError, ValueError) as error:
    raise client_common.CommandError(f"cannot write --out '{args.out}': "
                                     f'{getattr(error, "strerror", None) or error}') from None
  print(f'Wrote {args.out}: {count} images of {height}x{width}x{channels} in a '
        f'{math.ceil(count / columns)}x{columns} grid, each scaled {scale}x '
        f'({grid.shape[1]}x{grid.shape[0]} pixels)')
  if args.images_dir:
    try:
      os.makedirs(args.images_dir, exist_ok=True)
      for index, png in enumerate(generated.png):
        with open(os.path.join(args.images_dir, f'image_{index:03d}.png'), 'wb') as f:
          f.write(png)
    except OSError as error:
      raise client_common.CommandError(f"cannot write to --images-dir '{args.images_dir}': "
                                       f'{error.strerror or error}') from None
    print(f'Wrote {count} PNGs to {args.images_dir}')
  return 0
