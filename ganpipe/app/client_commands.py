"""`ganpipe classify`, `generate` and `models`: command-line clients of a TF Serving server."""

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

DEFAULT_TARGET = 'localhost:8500'
DEFAULT_TIMEOUT = 10.0
EXIT_FAILED = 1

_CONNECTION_HELP = ('The server is any TF Serving compatible gRPC endpoint, such as '
                    'tensorflow_model_server --port=8500.')


def add_parsers(commands) -> None:
  """Adds the `classify`, `generate` and `models` subcommands.

  Args:
    commands: the subparsers action of the `ganpipe` parser (what `add_subparsers()` returned).
  """
  classify = commands.add_parser(
      'classify', help='classify images with the served classifier',
      description='Send PNG or JPEG images to the served classifier and print, per image, the '
      f'predicted class and its probability. {_CONNECTION_HELP}')
  classify.add_argument('images', nargs='+', metavar='IMG', help='PNG or JPEG files')
  classify.add_argument('--model', default='classifier',
                        help='the model name on the server (default: %(default)s)')
  _add_version_flags(classify)
  classify.add_argument('--json', action='store_true',
                        help='print a JSON list of {path, class_id, class_name, probability, '
                        'probabilities}')
  classify.add_argument('--batch-size', type=_positive_int, default=64, metavar='N',
                        help='images per request (default: %(default)s)')
  _add_connection_flags(classify)
  classify.set_defaults(handler=_classify)

  generate = commands.add_parser(
      'generate', help='generate images with the served GAN generator',
      description='Ask the served generator for images and write them as one PNG grid. The same '
      f'seed and model version give the same images. {_CONNECTION_HELP}')
  generate.add_argument('--model', default='generator',
                        help='the model name on the server (default: %(default)s)')
  _add_version_flags(generate)
  generate.add_argument('-n', '--num-images', type=_positive_int, default=16, metavar='N',
                        help='how many images (default: %(default)s)')
  generate.add_argument('--seed', type=_int64, default=0,
                        help='the noise seed, a 64-bit integer (default: %(default)s)')
  generate.add_argument('--out', required=True, metavar='FILE',
                        help='where to write the grid of all images; the format follows the '
                             'extension (.png, .jpg, .bmp, ...), PNG without one')
  generate.add_argument('--columns', type=_non_negative_int, default=0, metavar='N',
                        help='images per grid row; 0 makes the grid square (default)')
  generate.add_argument('--images-dir', metavar='DIR',
                        help='also write each image, as the server encoded it, to '
                        'DIR/image_000.png, ...')
  _add_connection_flags(generate)
  generate.set_defaults(handler=_generate)

  models = commands.add_parser(
      'models', help="show served models' versions and signatures",
      description='Show, per model, the state of each version (ModelService.GetModelStatus) and '
      f'the inputs and outputs of each signature (GetModelMetadata). {_CONNECTION_HELP}')
  models.add_argument('models', nargs='*', metavar='MODEL', default=['classifier', 'generator'],
                      help='model names on the server (default: classifier generator)')
  models.add_argument('--json', action='store_true',
                      help='print a JSON list of {model, versions, signatures}')
  _add_connection_flags(models)
  models.set_defaults(handler=_models)


def _add_version_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--version', type=_non_negative_int, metavar='N',
                     help='use this model version (default: the latest)')
  group.add_argument('--label', metavar='LABEL',
                     help='use the version with this label, e.g. stable')


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group('server')
  group.add_argument('--target', type=_target, default=DEFAULT_TARGET, metavar='HOST:PORT',
                     help="the server's gRPC address (default: %(default)s)")
  group.add_argument('--timeout', type=_positive_float, default=DEFAULT_TIMEOUT, metavar='SECONDS',
                     help='deadline of each request (default: %(default)s)')
  group.add_argument('--ca-cert', metavar='PEM',
                     help='use TLS, trusting the server certificates this CA signed')
  group.add_argument('--client-cert', metavar='PEM',
                     help="use TLS with this client certificate chain, for a server whose "
                          "--ssl_config_file sets client_verify (with --client-key)")
  group.add_argument('--client-key', metavar='PEM', help="the --client-cert's private key")


def _target(text: str) -> str:
  """HOST:PORT, [IPv6]:PORT, or a gRPC target URI (dns:///..., unix:...)."""
  if '://' in text or text.startswith('unix:'):
    return text
  host, _, port = text.rpartition(':')
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    # gRPC would quietly use port 443 for a target without one.
    raise argparse.ArgumentTypeError(f'expected HOST:PORT, such as localhost:8500, got {text!r}')
  if ':' in host and not (host.startswith('[') and host.endswith(']')):
    raise argparse.ArgumentTypeError(f'an IPv6 address goes in brackets, such as [::1]:8500, '
                                     f'got {text!r}')
  return text


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
  return value


def _non_negative_int(text: str) -> int:
  value = int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must not be negative, got {text}')
  return value


def _int64(text: str) -> int:
  value = int(text)
  if not -2**63 <= value < 2**63:
    raise argparse.ArgumentTypeError(f'must be a 64-bit integer, got {text}')
  return value


def _positive_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected seconds, got {text!r}') from None
  if not value > 0 or math.isinf(value):
    raise argparse.ArgumentTypeError(f'must be a positive number of seconds, got {text}')
  return value


class _CommandError(Exception):
  """A failure to report as one line, such as a file that cannot be read or written."""


def _reports_errors(handler: Callable[..., int]) -> Callable[..., int]:
  """Runs `handler(args, client_lib, ...)`; a ServingError or _CommandError becomes one line.

  The client module loads TensorFlow, which takes seconds, so it is imported only once a command
  runs, not for `--help` or a usage error.
  """
  @functools.wraps(handler)
  def run(args: argparse.Namespace, *more) -> int:
    from ganpipe.serving import client as client_lib  # pylint: disable=import-outside-toplevel
    try:
      return handler(args, client_lib, *more)
    except (client_lib.ServingError, _CommandError) as error:
      if getattr(args, 'verbose', False):
        traceback.print_exc()
      _error(str(error))
      return EXIT_FAILED
  return run


def _connect(args: argparse.Namespace, client_lib):
  """A ServingClient for the --target, --timeout and TLS flags."""
  if bool(args.client_cert) != bool(args.client_key):
    raise _CommandError('--client-cert and --client-key go together')
  credentials = None
  if args.ca_cert or args.client_cert:
    try:
      credentials = client_lib.ssl_credentials(args.ca_cert, private_key_path=args.client_key,
                                               cert_chain_path=args.client_cert)
    except OSError as error:
      flags = {args.ca_cert: '--ca-cert', args.client_cert: '--client-cert',
               args.client_key: '--client-key'}
      raise _CommandError(f"cannot read {flags.get(error.filename, 'a TLS file')} "
                          f"'{error.filename}': {error.strerror or error}") from None
  return client_lib.ServingClient(args.target, timeout=args.timeout, credentials=credentials)


def _classify(args: argparse.Namespace) -> int:
  # Read every file before anything loads or connects: a typo in a path should fail in
  # milliseconds, name the file, and send nothing.
  images, unreadable = [], []
  for path in args.images:
    try:
      with open(path, 'rb') as f:
        data = f.read()
    except OSError as error:
      unreadable.append(f"'{path}' ({error.strerror or error})")
      continue
    if not data:
      unreadable.append(f"'{path}' (empty file)")
      continue
    images.append(data)
  if unreadable:
    _error(f'cannot read image{"s" if len(unreadable) > 1 else ""} {", ".join(unreadable)}; '
           'nothing was sent')
    return EXIT_FAILED
  return _classify_images(args, images)


@_reports_errors
def _classify_images(args: argparse.Namespace, client_lib, images: List[bytes]) -> int:
  results = []  # Per image: a Prediction, or _Rejected with the server's reason.
  with _connect(args, client_lib) as client:
    for start in range(0, len(images), args.batch_size):
      results += _classify_batch(client, client_lib, args, images[start:start + args.batch_size])
  rejected = [(path, result) for path, result in zip(args.images, results)
              if isinstance(result, _Rejected)]
  if len(rejected) == len(results) and len({r.message for _, r in rejected}) == 1:
    # Every image, for the same reason: the request, not the images (an unknown label, say).
    raise client_lib.ServingError(rejected[0][1].message)
  if args.json:
    print(json.dumps([
        {'path': path, 'error': result.reason} if isinstance(result, _Rejected) else
        {'path': path, 'class_id': result.class_id, 'class_name': result.class_name,
         'probability': result.probability, 'probabilities': list(result.probabilities)}
        for path, result in zip(args.images, results)], indent=2))
  else:
    classified = [(path, result) for path, result in zip(args.images, results)
                  if not isinstance(result, _Rejected)]
    if classified:
      path_width = max(len(path) for path, _ in classified)
      name_width = max(len(result.class_name) for _, result in classified)
      for path, result in classified:
        print(f'{path:<{path_width}}  {result.class_name:<{name_width}}  '
              f'{result.probability:.3f}')
  for path, result in rejected:
    _error(f"the server rejected '{path}': {result.reason}")
  return EXIT_FAILED if rejected else 0


@dataclasses.dataclass(frozen=True)
class _Rejected:
  """An image the server answered INVALID_ARGUMENT for, when sent alone."""
  message: str  # The whole error: which call, model and server.

  @property
  def reason(self) -> str:
    return self.message.split(' failed: ', 1)[-1]


def _classify_batch(client, client_lib, args: argparse.Namespace, batch: List[bytes]) -> list:
  """Predictions for `batch`; if the server rejects it, each image is sent alone to find which.

  A batch is one request, so one corrupt or non-image file fails all of it, and the server's
  error cannot say which file it was. The other images still get their answers.
  """
  from ganpipe.app import queries  # pylint: disable=import-outside-toplevel  (TensorFlow)
  invalid = client_lib.grpc.StatusCode.INVALID_ARGUMENT

  def classify(images):
    return queries.classify_images(client, args.model, images, version=args.version,
                                   version_label=args.label)
  try:
    return classify(batch)
  except client_lib.ServingError as error:
    if error.code != invalid:
      raise
    if len(batch) == 1:
      return [_Rejected(str(error))]
  results = []
  for image in batch:
    try:
      results += classify([image])
    except client_lib.ServingError as error:
      if error.code != invalid:
        raise
      results.append(_Rejected(str(error)))
  return results


@_reports_errors
def _generate(args: argparse.Namespace, client_lib) -> int:
  # pylint: disable=import-outside-toplevel
  from PIL import Image
  from ganpipe.app import queries  # TensorFlow, which the client has loaded already
  from ganpipe.models.gan import grid as grid_lib  # numpy only
  # pylint: enable=import-outside-toplevel
  # Where the answer goes is checked before anything is asked for.
  if os.path.isdir(args.out):
    raise _CommandError(f"cannot write --out '{args.out}': Is a directory")
  if args.images_dir and os.path.exists(args.images_dir) and not os.path.isdir(args.images_dir):
    raise _CommandError(f"cannot write to --images-dir '{args.images_dir}': Not a directory")
  with _connect(args, client_lib) as client:
    generated = queries.generate(client, args.model, args.num_images, args.seed,
                                 version=args.version, version_label=args.label)
  count, height, width, channels = generated.images.shape
  if channels not in (1, 2, 3, 4):
    raise _CommandError(f'the generator returned images with {channels} channels; a PNG holds '
                        '1 to 4')
  columns = min(args.columns, count) if args.columns else math.ceil(math.sqrt(count))
  grid = grid_lib.make_grid(generated.images, columns=columns)
  try:
    _make_parent(args.out)
    # Pillow picks L, LA, RGB or RGBA from the array's shape, and the format from the extension.
    Image.fromarray(grid[..., 0] if channels == 1 else grid).save(
        args.out, format=None if os.path.splitext(args.out)[1] else 'PNG')
  except (OSError, ValueError) as error:  # ValueError: an extension Pillow does not know.
    raise _CommandError(f"cannot write --out '{args.out}': "
                        f'{getattr(error, "strerror", None) or error}') from None
  print(f'Wrote {args.out}: {count} images of {height}x{width}x{channels} in a '
        f'{math.ceil(count / columns)}x{columns} grid ({grid.shape[1]}x{grid.shape[0]} pixels)')
  if args.images_dir:
    try:
      os.makedirs(args.images_dir, exist_ok=True)
      for index, png in enumerate(generated.png):
        with open(os.path.join(args.images_dir, f'image_{index:03d}.png'), 'wb') as f:
          f.write(png)
    except OSError as error:
      raise _CommandError(f"cannot write to --images-dir '{args.images_dir}': "
                          f'{error.strerror or error}') from None
    print(f'Wrote {count} PNGs to {args.images_dir}')
  return 0


@_reports_errors
def _models(args: argparse.Namespace, client_lib) -> int:
  reports, failed = [], False
  with _connect(args, client_lib) as client:
    for model in args.models:
      # One missing model should not hide the others; report each failure and exit 1 at the end.
      try:
        versions = client.model_status(model)
      except client_lib.ServingError as error:
        _error(str(error))
        failed = True
        continue
      try:
        signatures = client.model_metadata(model)
      except client_lib.ServingError as error:
        # A model whose versions are all loading or failed has no metadata; its states still help.
        _error(str(error))
        failed, signatures = True, None
      reports.append({'model': model, 'versions': versions, 'signatures': signatures})
  if args.json:
    print(json.dumps(reports, indent=2))
  else:
    for report in reports:
      print(_format_model(report))
  return EXIT_FAILED if failed else 0


def _format_model(report: Dict[str, Any]) -> str:
  lines = [report['model']]
  for status in report['versions']:
    error = f"  ({status['error']})" if status['error'] else ''
    lines.append(f"  version {status['version']}  {status['state']}{error}")
  if not report['versions']:
    lines.append('  no versions')
  # SavedModels carry an init-op pseudo-signature that clients cannot call.
  for name, signature in (report['signatures'] or {}).items():
    if name.startswith('__'):
      continue
    lines.append(f"  signature {name}" +
                 (f" ({signature['method_name']})" if signature['method_name'] else ''))
    tensors = [('in', alias, info) for alias, info in signature['inputs'].items()]
    tensors += [('out', alias, info) for alias, info in signature['outputs'].items()]
    alias_width = max((len(alias) for _, alias, _ in tensors), default=0)
    for direction, alias, info in tensors:
      lines.append(f"    {direction:<3}  {alias:<{alias_width}}  {info['dtype'] or 'op':<7}  "
                   f"{_format_shape(info['shape'])}")
  return '\n'.join(lines)


def _format_shape(shape: Optional[List[Optional[int]]]) -> str:
  if shape is None:
    return '(unknown rank)'
  return '[' + ', '.join('?' if dim is None else str(dim) for dim in shape) + ']'


def _make_parent(path: str) -> None:
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)


def _error(message: str) -> None:
  print(f'ganpipe: error: {message}', file=sys.stderr)
