"""`ganpipe serve`: a model server that speaks TF Serving's gRPC and REST protocols."""

import argparse
import logging
import signal
import sys
import threading
from typing import List, Optional

from ganpipe.serving import config as config_lib
from ganpipe.serving import metrics


def add_parser(commands) -> None:
  """Adds `serve` to the `ganpipe` subcommands."""
  parser = commands.add_parser(
      'serve', help='serve models over TF Serving gRPC (and REST)',
      description='Serve SavedModels with TF Serving\'s gRPC and REST APIs. Flags are named as '
                  "tensorflow_model_server's. Give --model_config_file, or --model_name and "
                  '--model_base_path.')
  add_arguments(parser)
  parser.set_defaults(handler=serve)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--port', type=int, default=8500, help='gRPC port; 0 picks a free one')
  parser.add_argument('--grpc_socket_path',
                      help='also serve gRPC on this UNIX socket (clients: --target unix:PATH)')
  parser.add_argument('--rest_api_port', type=int, default=None,
                      help='REST port (off unless given; 0 picks a free one)')
  parser.add_argument('--host', default='127.0.0.1',
                      help='address to bind (default loopback; 0.0.0.0 exposes the server)')
  parser.add_argument('--model_config_file', help='ModelServerConfig text proto')
  parser.add_argument('--model_config_file_poll_wait_seconds', type=float, default=0.0,
                      help='how often --model_config_file is read again, and applied if it '
                           'changed; 0 (the default) reads it once')
  parser.add_argument('--model_name', default='default',
                      help='model name, with --model_base_path (default: %(default)s)')
  parser.add_argument('--model_base_path', help='folder of numeric version folders')
  parser.add_argument('--file_system_poll_wait_seconds', type=float, default=1.0,
                      help='how often base paths are scanned for new versions; 0 scans once')
  parser.add_argument('--enable_batching', type=_flag_bool, nargs='?', const=True,
                      default=False, metavar='true|false',
                      help='batch concurrent requests to the same signature')
  parser.add_argument('--batching_parameters_file',
                      help='text proto: max_batch_size, batch_timeout_micros, num_batch_threads, '
                           'max_enqueued_batches')
  parser.add_argument('--max_message_size_bytes', type=int,
                      default=config_lib.DEFAULT_MAX_MESSAGE_BYTES,
                      help='larger requests get RESOURCE_EXHAUSTED (default: %(default)s)')
  parser.add_argument('--grpc_max_threads', type=int, default=32,
                      help='concurrent gRPC requests handled (default: %(default)s)')
  parser.add_argument('--tensorflow_session_parallelism', type=int, default=0, metavar='N',
                      help='sets --tensorflow_intra_op_parallelism and '
                           '--tensorflow_inter_op_parallelism both to N (TF Serving\'s older '
                           'flag; give it or them)')
  parser.add_argument('--per_process_gpu_memory_fraction', type=float, default=0.0,
                      metavar='FRACTION',
                      help='the share of each GPU\'s memory a model takes; 0: grown as needed')
  for flag, kind, reason in _NO_EFFECT_FLAGS:
    boolean = kind is _flag_bool
    parser.add_argument(f'--{flag}', type=kind, nargs='?' if boolean else None,
                        const=True if boolean else None, default=None,
                        metavar='true|false' if boolean else 'N',
                        help=f'accepted for tensorflow_model_server command lines; no effect here '
                             f'({reason})')
  parser.add_argument('--grpc_channel_arguments', default='',
                      help='gRPC server arguments, "key=value,key=value" '
                           '(e.g. grpc.max_connection_age_ms=30000)')
  parser.add_argument('--tensorflow_intra_op_parallelism', type=int, default=0,
                      help='threads a single TensorFlow op may use; 0 = one per CPU')
  parser.add_argument('--tensorflow_inter_op_parallelism', type=int, default=-1,
                      help='threads that run independent ops of a request; 0 = one per CPU, '
                           'negative (the default) = the thread that runs the request')
  parser.add_argument('--ssl_config_file',
                      help="TF Serving's SSLConfig text proto (server_key, server_cert, custom_ca, "
                           'client_verify); enables TLS for gRPC, and with client_verify requires '
                           'client certificates signed by custom_ca')
  parser.add_argument('--ssl_cert_file', help='PEM certificate chain; enables TLS for gRPC')
  parser.add_argument('--ssl_key_file', help='PEM private key for --ssl_cert_file')
  parser.add_argument('--enable_model_warmup', type=_flag_bool, nargs='?', const=True,
                      default=True, metavar='true|false',
                      help='replay assets.extra/tf_serving_warmup_requests before a version '
                           'serves (default: true)')
  parser.add_argument('--num_request_iterations_for_warmup', type=int, default=1,
                      help='how often each warmup request is replayed (default: %(default)s)')
  parser.add_argument('--monitoring_config_file',
                      help="TF Serving's MonitoringConfig text proto; with prometheus_config "
                           '{ enable: true } the REST port serves Prometheus metrics at its path '
                           '(default /monitoring/prometheus/metrics)')
  parser.add_argument('--rest_api_timeout_in_ms', type=int, default=30000,
                      help='how long a REST request may wait for a thread and the model; '
                           'past it, 504 or 429 (default: %(default)s; 0: forever)')
  parser.add_argument('--rest_api_num_threads', type=int, default=None,
                      help='REST requests processed at once; others wait (default: 4 per CPU)')
  parser.add_argument('--enforce_session_run_timeout', type=_flag_bool, nargs='?', const=True,
                      default=True, metavar='true|false',
                      help="a gRPC call's deadline bounds its wait for the model; a request "
                           'still waiting when it passes never runs (default: true)')
  parser.add_argument('--allow_version_labels_for_unavailable_models', type=_flag_bool,
                      nargs='?', const=True, default=False, metavar='true|false',
                      help='a version label may name a version not loaded yet: any label at '
                           'start-up, a new one on a config reload; without it, a config with '
                           'labels cannot start the server (default: false)')
  parser.add_argument('--enable_serialization_as_tensor_content', type=_flag_bool, nargs='?',
                      const=True, default=False, metavar='true|false',
                      help="Predict answers with each output's raw tensor_content, not the "
                           "dtype's repeated field (float_val, ...) that clients read by "
                           'default (default: false)')
  parser.add_argument('--saved_model_tags', default='serve',
                      help='comma-separated tags of the MetaGraph to load (default: serve)')
  parser.add_argument('--max_num_load_retries', type=int, default=5,
                      help='how often a version that failed to load is tried again before it is '
                           'given up until its saved_model.pb changes (default: %(default)s)')
  parser.add_argument('--load_retry_interval_micros', type=int, default=60_000_000,
                      help='the wait between those tries (default: %(default)s, one minute)')
  parser.add_argument('--enable_signature_method_name_check', type=_flag_bool, nargs='?',
                      const=True, default=False, metavar='true|false',
                      help='a signature serves only the API its method_name names; off, any '
                           'signature of the right shape serves Predict, Classify and Regress, '
                           'as TF2 SavedModels need (default: false)')
  parser.add_argument('--shutdown_grace_seconds', type=float, default=30.0,
                      help='how long in-flight requests may run after SIGTERM')


def no_effect_flags_given(args: argparse.Namespace) -> List[str]:
  """The start-up warnings for the no-effect flags `args` gives."""
  return [f'ignoring --{flag}, accepted as tensorflow_model_server takes it: {reason}'
          for flag, _, reason in _NO_EFFECT_FLAGS if getattr(args, flag) is not None]


def _flag_bool(text: str) -> bool:
  """A boolean flag's value as tensorflow_model_server takes it: --flag, --flag=true|false."""
  value = {'true': True, '1': True, 'false': False, '0': False}.get(text.lower())
  if value is None:
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')
  return value


# tensorflow_model_server flags that tune what this server does not have; a command line written
# for it runs here, and each one given is named in a warning at start-up.
_NO_EFFECT_FLAGS = (
    ('flush_filesystem_caches', _flag_bool, 'nothing is cached from the file system'),
    ('enable_profiler', _flag_bool, 'there is no profiler service'),
    ('remove_unused_fields_from_bundle_metagraph', _flag_bool,
     'a MetaGraph is not kept after loading'),
    ('num_load_threads', int, 'versions load one at a time'),
    ('num_unload_threads', int, 'versions unload one at a time'),
)


def options_from_args(args: argparse.Namespace) -> config_lib.ServerOptions:
  """Raises ConfigError for a missing or contradictory model source."""
  if args.model_config_file and args.model_base_path:
    raise config_lib.ConfigError('give --model_config_file or --model_base_path, not both')
  if args.model_config_file:
    model_config = config_lib.read_model_server_config(args.model_config_file)
  elif args.model_base_path:
    model_config = config_lib.single_model_config(args.model_name, args.model_base_path)
  else:
    raise config_lib.ConfigError('no models: give --model_config_file, or --model_name and '
                                 '--model_base_path')
  metrics_path = None
  if args.monitoring_config_file:
    try:
      metrics_path = metrics.read_monitoring_config(args.monitoring_config_file)
    except ValueError as error:
      raise config_lib.ConfigError(str(error)) from None
  return config_lib.ServerOptions(
      model_config=model_config, model_config_file=args.model_config_file,
      model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
      host=args.host, port=args.port, grpc_socket_path=args.grpc_socket_path,
      rest_api_port=args.rest_api_port,
      file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
      enable_batching=args.enable_batching or bool(args.batching_parameters_file),
      batching=config_lib.read_batching_parameters(args.batching_parameters_file),
      max_message_size_bytes=args.max_message_size_bytes, grpc_max_threads=args.grpc_max_threads,
      grpc_channel_arguments=config_lib.parse_grpc_channel_arguments(args.grpc_channel_arguments),
      tensorflow_intra_op_parallelism=args.tensorflow_intra_op_parallelism,
      tensorflow_inter_op_parallelism=args.tensorflow_inter_op_parallelism,
      tensorflow_session_parallelism=args.tensorflow_session_parallelism,
      per_process_gpu_memory_fraction=args.per_process_gpu_memory_fraction,
      ssl_config_file=args.ssl_config_file, ssl_cert_file=args.ssl_cert_file,
      ssl_key_file=args.ssl_key_file,
      shutdown_grace_seconds=args.shutdown_grace_seconds,
      enable_model_warmup=args.enable_model_warmup,
      num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
      metrics_path=metrics_path, rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
      rest_api_num_threads=args.rest_api_num_threads,
      enforce_session_run_timeout=args.enforce_session_run_timeout,
      enable_signature_method_name_check=args.enable_signature_method_name_check,
      max_num_load_retries=args.max_num_load_retries,
      saved_model_tags=tuple(tag.strip() for tag in args.saved_model_tags.split(',')),
      allow_version_labels_for_unavailable_models=(
          args.allow_version_labels_for_unavailable_models),
      enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
      load_retry_interval_micros=args.load_retry_interval_micros)


def serve(args: argparse.Namespace) -> int:
  """Runs the server until SIGTERM or SIGINT, then drains in-flight requests."""
  try:
    options = options_from_args(args)
  except config_lib.ConfigError as e:
    print(f'ganpipe: error: {e}', file=sys.stderr)
    return 2
  # Model loads and unloads are the server's log, as in tensorflow_model_server.
  serving_log = logging.getLogger('ganpipe.serving')
  serving_log.setLevel(logging.INFO)
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s'))
  serving_log.addHandler(handler)
  propagate, serving_log.propagate = serving_log.propagate, False
  for warning in no_effect_flags_given(args):
    serving_log.warning('%s', warning)
  try:
    return _run_until_signalled(options)
  finally:
    # A caller that serves twice in one process (tests do) would otherwise log everything twice,
    # the second time to a stream that may be closed.
    serving_log.removeHandler(handler)
    serving_log.propagate = propagate


def _run_until_signalled(options: config_lib.ServerOptions) -> int:
  from ganpipe.serving import server as server_lib  # pylint: disable=import-outside-toplevel  (TF)
  from ganpipe.serving import errors  # pylint: disable=import-outside-toplevel
  server = server_lib.ModelServer(options)
  try:
    server.start()
  except OSError as e:
    print(f'ganpipe: error: cannot start the server: {e}', file=sys.stderr)
    return 1
  except errors.ServingError as e:
    # As tensorflow_model_server: "Failed to start server. Error: <code>: <message>".
    print(f'ganpipe: error: cannot start the server: {e.code.name}: {e.message}',
          file=sys.stderr)
    return 1
  print(f'Running gRPC ModelServer at {options.host}:{server.port} ...', flush=True)
  if options.grpc_socket_path:
    print(f'Running gRPC ModelServer at unix:{options.grpc_socket_path} ...', flush=True)
  if server.rest_port is not None:
    print(f'Exporting HTTP/REST API at:{options.host}:{server.rest_port} ...', flush=True)
  stopping = threading.Event()
  for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda *_: stopping.set())
  stopping.wait()
  print('Shutting down: draining in-flight requests ...', flush=True)
  server.stop()
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m ganpipe.serving',
                                   description=__doc__.split(':', 1)[1].strip())
  add_arguments(parser)
  return serve(parser.parse_args(argv))
