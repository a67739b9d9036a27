"""What the client commands share: their flags, connecting, and errors on one line.

Nothing here loads TensorFlow: the serving client does, which takes seconds, so it is imported
only once a command has checked its input and found a server listening.
"""

import argparse
import functools
import math
import os
import socket
import sys
import time
import traceback
from typing import Callable

DEFAULT_TARGET = 'localhost:8500'
DEFAULT_TIMEOUT = 10.0
EXIT_FAILED = 1
CONNECTION_HELP = ('The server is any TF Serving compatible gRPC endpoint, such as '
                   'tensorflow_model_server --port=8500.')
# The serving client's own defaults (serving/client.py, ServingClient): a server that refuses
# connections is tried as often, as far apart, before the command gives up.
RETRIES = 3
BACKOFF_SECONDS = 0.2
# The environment variables through which gRPC reaches a server via a proxy (grpc's
# src/core/handshaker/http_connect/http_proxy_mapper.cc); a direct probe would be wrong then.
_PROXY_VARIABLES = ('grpc_proxy', 'https_proxy', 'http_proxy')


class CommandError(Exception):
  """A failure to report as one line, such as a file that cannot be read or written."""


def add_version_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--version', type=non_negative_int, metavar='N',
                     help='use this model version (default: the latest)')
  group.add_argument('--label', metavar='LABEL',
                     help='use the version with this label, e.g. stable or canary')


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group('server')
  group.add_argument('--target', type=target_type, default=DEFAULT_TARGET, metavar='HOST:PORT',
                     help="the server's gRPC address (default: %(default)s)")
  group.add_argument('--timeout', type=positive_float, default=DEFAULT_TIMEOUT,
                     metavar='SECONDS', help='deadline of each request (default: %(default)s)')
  group.add_argument('--ca-cert', metavar='PEM',
                     help='use TLS, trusting the server certificates this CA signed')
  group.add_argument('--client-cert', metavar='PEM',
                     help="use TLS with this client certificate chain, for a server whose "
                          "--ssl_config_file sets client_verify (with --client-key)")
  group.add_argument('--client-key', metavar='PEM', help="the --client-cert's private key")


def target_type(text: str) -> str:
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


def positive_int(text: str) -> int:
  value = _int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
  return value


def non_negative_int(text: str) -> int:
  value = _int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must not be negative, got {text}')
  return value


def int64(text: str) -> int:
  value = _int(text)
  if not -2**63 <= value < 2**63:
    raise argparse.ArgumentTypeError(f'must be a 64-bit integer, got {text}')
  return value


def _int(text: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None


def positive_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected seconds, got {text!r}') from None
  if not value > 0 or math.isinf(value):
    raise argparse.ArgumentTypeError(f'must be a positive number of seconds, got {text}')
  return value


def reports_errors(handler: Callable[..., int]) -> Callable[..., int]:
  """Runs `handler(args, client_lib, ...)`; a ServingError or CommandError becomes one line.

  Before the client module loads TensorFlow (seconds), the --target is probed: a server that is
  not there is reported as fast as a typo in a path.
  """
  @functools.wraps(handler)
  def run(args: argparse.Namespace, *more) -> int:
    try:
      check_listening(args.target, min(args.timeout, 5.0))
      from ganpipe.serving import client as client_lib  # pylint: disable=import-outside-toplevel
      try:
        return handler(args, client_lib, *more)
      except client_lib.ServingError as error:
        raise CommandError(str(error)) from error
    except CommandError as error:
      if getattr(args, 'verbose', False):
        traceback.print_exc()
      print_error(str(error))
      return EXIT_FAILED
  return run


def check_listening(target: str, timeout: float, retries: int = RETRIES,
                    backoff: float = BACKOFF_SECONDS) -> None:
  """Raises CommandError unless something accepts TCP connections at a HOST:PORT target.

  Refused connections are retried as the serving client retries UNAVAILABLE, so a server that
  is still starting gets the same grace. gRPC URIs (dns:///, unix:) and targets reached through
  a proxy are left to gRPC.
  """
  if '://' in target or target.startswith('unix:') or any(
      os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
    return
  host, _, port = target.rpartition(':')
  host = host[1:-1] if host.startswith('[') else host
  attempts = retries + 1
  for attempt in range(attempts):
    try:
      with socket.create_connection((host, int(port)), timeout=timeout):
        return
    except socket.gaierror as error:
      raise CommandError(f'cannot connect to {target}: unknown host {host!r} '
                         f'({error.strerror})') from None
    except OSError as error:
      reason = error.strerror or type(error).__name__
      if attempt + 1 < attempts:
        time.sleep(backoff * 2**attempt)
  raise CommandError(f'cannot connect to {target}: {reason} (gave up after {attempts} '
                     f'attempts). Is the server running at {target}?')


def connect(args: argparse.Namespace, client_lib):
  """A ServingClient for the --target, --timeout and TLS flags."""
  if bool(args.client_cert) != bool(args.client_key):
    raise CommandError('--client-cert and --client-key go together')
  credentials = None
  if args.ca_cert or args.client_cert:
    try:
      credentials = client_lib.ssl_credentials(args.ca_cert, private_key_path=args.client_key,
                                               cert_chain_path=args.client_cert)
    except OSError as error:
      flags = {args.ca_cert: '--ca-cert', args.client_cert: '--client-cert',
               args.client_key: '--client-key'}
      raise CommandError(f"cannot read {flags.get(error.filename, 'a TLS file')} "
                         f"'{error.filename}': {error.strerror or error}") from None
  return client_lib.ServingClient(args.target, timeout=args.timeout, credentials=credentials)


def with_models_hint(error, client, client_lib, model: str,
                     candidates=('classifier', 'generator')) -> str:
  """The error's text; when `model` is not on the server, also which of `candidates` are.

  TF Serving has no call that lists its models, so the pipeline's model names are asked for.
  """
  text = str(error)
  if error.code != client_lib.grpc.StatusCode.NOT_FOUND or _exists(client, client_lib, model):
    return text  # another failure, or the model is there and a version or label of it is not
  served = [name for name in candidates if name != model and _serves(client, client_lib, name)]
  if served:
    return (f'{text}. The server has no model {model!r}; it serves '
            f'{", ".join(served)}: pass --model with one of them')
  return (f"{text}. The server has no model {model!r}, nor any of the pipeline's "
          f'({", ".join(candidates)}): pass --model with a name from its --model_name or '
          'models.config')


def _exists(client, client_lib, model: str) -> bool:
  try:
    client.model_status(model)
  except client_lib.ServingError as error:
    return error.code != client_lib.grpc.StatusCode.NOT_FOUND
  return True


def _serves(client, client_lib, model: str) -> bool:
  try:
    return any(status['state'] == 'AVAILABLE' for status in client.model_status(model))
  except client_lib.ServingError:
    return False


def make_parent(path: str) -> None:
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)


def print_error(message: str) -> None:
  print(f'ganpipe: error: {message}', file=sys.stderr)
