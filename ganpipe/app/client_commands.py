"""`ganpipe classify` and `models`, and the parsers of every client of a TF Serving server."""

import argparse
import dataclasses
import json
from typing import Any, Dict, List, Optional

from ganpipe.app import client_common
from ganpipe.app import generate_command

# Kept here too, where callers found them before the shared parts moved to client_common.
DEFAULT_TARGET = client_common.DEFAULT_TARGET
DEFAULT_TIMEOUT = client_common.DEFAULT_TIMEOUT
EXIT_FAILED = client_common.EXIT_FAILED
positive_int = client_common.positive_int


def add_parsers(commands) -> None:
  """Adds the `classify`, `generate` and `models` subcommands.

  Args:
    commands: the subparsers action of the `ganpipe` parser (what `add_subparsers()` returned).
  """
  classify = commands.add_parser(
      'classify', help='classify images with the served classifier',
      description='Send PNG or JPEG images to the served classifier and print, per image, the '
      f'predicted class and its probability. {client_common.CONNECTION_HELP}')
  classify.add_argument('images', nargs='+', metavar='IMG', help='PNG or JPEG files')
  classify.add_argument('--model', default='classifier',
                        help='the model name on the server (default: %(default)s)')
  client_common.add_version_flags(classify)
  classify.add_argument('--json', action='store_true',
                        help='print a JSON list of {path, class_id, class_name, probability, '
                        'probabilities}')
  classify.add_argument('--batch-size', type=positive_int, default=64, metavar='N',
                        help='images per request (default: %(default)s)')
  client_common.add_connection_flags(classify)
  classify.set_defaults(handler=_classify)

  generate_command.add_parser(commands)

  models = commands.add_parser(
      'models', help="show served models' versions and signatures",
      description='Show, per model, the state of each version (ModelService.GetModelStatus) and '
      'the inputs and outputs of each signature (GetModelMetadata). '
      f'{client_common.CONNECTION_HELP}')
  models.add_argument('models', nargs='*', metavar='MODEL', default=['classifier', 'generator'],
                      help='model names on the server (default: classifier generator)')
  models.add_argument('--json', action='store_true',
                      help='print a JSON list of {model, versions, signatures}')
  client_common.add_connection_flags(models)
  models.set_defaults(handler=_models)


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


@client_common.reports_errors
def _classify_images(args: argparse.Namespace, client_lib, images: List[bytes]) -> int:
  results = []  # Per image: a Prediction, or _Rejected with the server's reason.
  with client_common.connect(args, client_lib) as client:
    try:
      for start in range(0, len(images), args.batch_size):
        results += _classify_batch(client, client_lib, args,
                                   images[start:start + args.batch_size])
    except client_lib.ServingError as error:
      raise client_common.CommandError(client_common.with_models_hint(
          error, client, client_lib, args.model)) from None
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


@client_common.reports_errors
def _models(args: argparse.Namespace, client_lib) -> int:
  reports, failed = [], False
  with client_common.connect(args, client_lib) as client:
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


def _error(message: str) -> None:
  client_common.print_error(message)
