"""The server's configuration: TF Serving's ModelServerConfig and batching parameters files."""

import dataclasses
import os
from typing import Optional, Tuple, Union

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ganpipe.serving import protos

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ConfigError(ValueError):
  """A config file or flag combination the server cannot use."""


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
  """Parses a `--model_config_file` (ModelServerConfig text proto) and checks it.

  Raises:
    ConfigError: the file is missing, does not parse, or is inconsistent.
  """
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except OSError as e:
    raise ConfigError(f'cannot read model config file {path}: {e.strerror}') from e
  config = model_server_config_pb2.ModelServerConfig()
  try:
    text_format.Parse(text, config)
  except text_format.ParseError as e:
    raise ConfigError(f'model config file {path} is not a ModelServerConfig text proto: {e}') from e
  validate_model_server_config(config)
  return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
  """The config TF Serving builds from `--model_name` and `--model_base_path`."""
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = name
  # The flag may be relative to where the server starts; config files must be absolute (as TF's).
  model.base_path = base_path if '://' in base_path else os.path.abspath(base_path)
  model.model_platform = 'tensorflow'
  validate_model_server_config(config)
  return config


def validate_model_server_config(config: model_server_config_pb2.ModelServerConfig) -> None:
  """Raises ConfigError for what TF Serving would refuse to start with."""
  if config.WhichOneof('config') == 'custom_model_config':
    raise ConfigError('custom_model_config is not supported; use model_config_list')
  names = set()
  for model in config.model_config_list.config:
    if not model.name:
      raise ConfigError('every model in model_config_list needs a name')
    if model.name in names:
      raise ConfigError(f'model {model.name!r} is configured twice')
    names.add(model.name)
    if not model.base_path:
      raise ConfigError(f'model {model.name!r} has no base_path')
    if not (os.path.isabs(model.base_path) or '://' in model.base_path):
      raise ConfigError(f'Expected model {model.name} to have an absolute path or URI; got '
                        f'base_path()={model.base_path}')
    if model.model_platform not in ('', 'tensorflow'):
      raise ConfigError(f'model {model.name!r}: model_platform {model.model_platform!r} is not '
                        "supported; only 'tensorflow' SavedModels are")
    policy = model.model_version_policy
    if policy.WhichOneof('policy_choice') == 'latest' and policy.latest.num_versions < 0:
      raise ConfigError(f'model {model.name!r}: latest.num_versions must be positive')
    if policy.WhichOneof('policy_choice') == 'specific' and not policy.specific.versions:
      raise ConfigError(f'model {model.name!r}: specific version policy lists no versions')
    for label, version in model.version_labels.items():
      if version <= 0:
        raise ConfigError(f'model {model.name!r}: label {label!r} points at version {version}')


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
  """TF Serving's batching parameters (session_bundle_config.proto BatchingParameters).

  `allowed_batch_sizes`: when given, each batch is padded (with copies of its first row) up to
  the smallest of them that holds it, as TF Serving does for models compiled for fixed sizes;
  the padding rows' outputs are dropped. `thread_pool_name` labels the batching metrics.
  """
  max_batch_size: int = 32
  batch_timeout_micros: int = 1000
  num_batch_threads: int = 4
  max_enqueued_batches: int = 100
  allowed_batch_sizes: Tuple[int, ...] = ()
  thread_pool_name: str = 'batch_threads'

  def __post_init__(self):
    for name in ('max_batch_size', 'batch_timeout_micros', 'num_batch_threads',
                 'max_enqueued_batches'):
      if getattr(self, name) < (0 if name == 'batch_timeout_micros' else 1):
        raise ConfigError(f'batching parameter {name} must be positive, '
                          f'got {getattr(self, name)}')
    sizes = self.allowed_batch_sizes
    # TF Serving's checks (batching_session.cc).
    if any(later <= earlier for earlier, later in zip(sizes, sizes[1:])) or (
        sizes and sizes[0] < 1):
      raise ConfigError(f'allowed_batch_sizes entries must be monotonically increasing, got '
                        f'{list(sizes)}')
    if sizes and sizes[-1] != self.max_batch_size:
      raise ConfigError(f'Last entry in allowed_batch_sizes must match max_batch_size; last '
                        f'entry was {sizes[-1]}; expected {self.max_batch_size}')


# The --batching_parameters_file proto; tensorflow-serving-api does not ship it.
_BatchingParametersProto = protos.message_classes(
    'tensorflow_serving/servables/tensorflow/session_bundle_config.proto', {
        'BatchingParameters': [
            ('max_batch_size', protos.INT64_VALUE),
            ('batch_timeout_micros', protos.INT64_VALUE),
            ('max_enqueued_batches', protos.INT64_VALUE),
            ('num_batch_threads', protos.INT64_VALUE),
            ('thread_pool_name', protos.STRING_VALUE),
            ('allowed_batch_sizes', protos.INT64, protos.REPEATED),
            ('pad_variable_length_inputs', protos.BOOL),
            ('enable_large_batch_splitting', protos.BOOL_VALUE),
            ('max_execution_batch_size', protos.INT64_VALUE),
        ]})['BatchingParameters']


def read_batching_parameters(path: Optional[str]) -> BatchingParameters:
  """Parses a `--batching_parameters_file`; None gives TF Serving's defaults.

  The file is TF Serving's BatchingParameters text proto (`max_batch_size { value: 32 }`); a
  field it does not have, or a malformed line, is an error, as in tensorflow_model_server.
  Requests that cannot share a batch (different shapes, or more rows than max_batch_size) run
  in batches of their own, so pad_variable_length_inputs, enable_large_batch_splitting and
  max_execution_batch_size are read but change nothing in the answers.
  """
  if path is None:
    return BatchingParameters()
  try:
    with open(path, encoding='utf-8') as f:
      proto = text_format.Parse(f.read(), _BatchingParametersProto())
  except OSError as e:
    raise ConfigError(f'cannot read batching parameters file {path}: {e.strerror}') from e
  except text_format.ParseError as e:
    raise ConfigError(f'batching parameters file {path}: {e}') from None
  values = {name: getattr(proto, name).value
            for name in ('max_batch_size', 'batch_timeout_micros', 'num_batch_threads',
                         'max_enqueued_batches', 'thread_pool_name') if proto.HasField(name)}
  return BatchingParameters(allowed_batch_sizes=tuple(proto.allowed_batch_sizes), **values)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
  """Everything `ganpipe serve` takes; the flag names are tensorflow_model_server's."""
  model_config: model_server_config_pb2.ModelServerConfig
  # Where model_config came from, if a file; with a positive poll wait, edits apply while serving.
  model_config_file: Optional[str] = None
  model_config_file_poll_wait_seconds: float = 0.0
  host: str = '127.0.0.1'
  port: int = 8500
  # A UNIX socket that also serves gRPC (TF Serving's --grpc_socket_path); None: none.
  grpc_socket_path: Optional[str] = None
  rest_api_port: Optional[int] = None  # None: no REST; 0: a free port
  file_system_poll_wait_seconds: float = 1.0
  enable_batching: bool = False
  batching: BatchingParameters = BatchingParameters()
  max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
  grpc_max_threads: int = 32
  # Extra gRPC server arguments, as TF Serving's --grpc_channel_arguments "k=v,k=v": a value
  # that parses as a 32-bit integer is passed as one, others as strings. They come last, so they
  # win over the server's own (grpc.max_receive_message_length, say).
  grpc_channel_arguments: Tuple[Tuple[str, Union[int, str]], ...] = ()
  # tensorflow_model_server's session threads. Intra-op: threads one op may use, 0 = one per
  # CPU. Inter-op: 0 = a pool with one thread per CPU; negative = each Session::Run runs its ops
  # on the thread that called it, which this server does by default (see session_config).
  tensorflow_intra_op_parallelism: int = 0
  tensorflow_inter_op_parallelism: int = -1
  # TF Serving's older single knob: both of the above at once, when neither is set.
  tensorflow_session_parallelism: int = 0
  # The share of each GPU's memory a Session takes; 0: TensorFlow grows it as needed.
  per_process_gpu_memory_fraction: float = 0.0
  # TLS for gRPC: TF Serving's SSLConfig text proto (which can require client certificates),
  # or a PEM certificate chain and key.
  ssl_config_file: Optional[str] = None
  ssl_cert_file: Optional[str] = None
  ssl_key_file: Optional[str] = None
  shutdown_grace_seconds: float = 30.0
  # Replaying assets.extra/tf_serving_warmup_requests before a version serves, as TF Serving.
  enable_model_warmup: bool = True
  num_request_iterations_for_warmup: int = 1
  # Where the REST port serves Prometheus metrics (from --monitoring_config_file); None: nowhere.
  metrics_path: Optional[str] = None
  # How long a REST request may wait for a thread and the model; 0 or less: forever.
  rest_api_timeout_in_ms: int = 30000
  # REST requests processed at once; None: TF Serving's default, 4 per CPU.
  rest_api_num_threads: Optional[int] = None
  # A gRPC call's deadline bounds its wait for the model, as in TF Serving.
  enforce_session_run_timeout: bool = True
  # Signatures serve only their own method (predict, classify, regress); off, as TF Serving's
  # default, any signature of the right shape serves each.
  enable_signature_method_name_check: bool = False
  # A version that fails to load is retried this often, this far apart, before it is given up.
  max_num_load_retries: int = 5
  # The tag set of the MetaGraph each version loads.
  saved_model_tags: Tuple[str, ...] = ('serve',)
  # A version label may name a version that is not available yet: any label at start-up, a new
  # one on a reload.
  allow_version_labels_for_unavailable_models: bool = False
  # Predict answers with raw tensor_content instead of the dtypes' repeated fields.
  enable_serialization_as_tensor_content: bool = False
  load_retry_interval_micros: int = 60_000_000

  def __post_init__(self):
    if not 0 <= self.port < 65536 or not 0 <= (self.rest_api_port or 0) < 65536:
      raise ConfigError('ports must be between 0 and 65535')
    if self.file_system_poll_wait_seconds < 0:
      raise ConfigError('file_system_poll_wait_seconds must not be negative')
    if self.model_config_file_poll_wait_seconds < 0:
      raise ConfigError('model_config_file_poll_wait_seconds must not be negative')
    if self.model_config_file_poll_wait_seconds and not self.model_config_file:
      raise ConfigError('--model_config_file_poll_wait_seconds polls --model_config_file; '
                        'give the file')
    if self.metrics_path and self.rest_api_port is None:
      raise ConfigError('--monitoring_config_file serves metrics on the REST port; give '
                        '--rest_api_port')
    if not self.saved_model_tags or not all(self.saved_model_tags):
      raise ConfigError(f'saved_model_tags must be one or more tags, got {self.saved_model_tags}')
    if self.max_num_load_retries < 0 or self.load_retry_interval_micros < 0:
      raise ConfigError('max_num_load_retries and load_retry_interval_micros must not be '
                        'negative')
    if self.rest_api_num_threads is not None and self.rest_api_num_threads < 1:
      raise ConfigError('rest_api_num_threads must be at least 1')
    if self.max_message_size_bytes < 1024:
      raise ConfigError('max_message_size_bytes must be at least 1024')
    if self.num_request_iterations_for_warmup < 1:
      raise ConfigError('num_request_iterations_for_warmup must be at least 1')
    if self.tensorflow_intra_op_parallelism < 0:
      raise ConfigError('tensorflow_intra_op_parallelism must not be negative')
    if self.tensorflow_session_parallelism < 0:
      raise ConfigError('tensorflow_session_parallelism must not be negative')
    if self.tensorflow_session_parallelism and (self.tensorflow_intra_op_parallelism or
                                                self.tensorflow_inter_op_parallelism != -1):
      raise ConfigError('Either configure --tensorflow_session_parallelism or '
                        '--tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism '
                        'separately, not both (as tensorflow_model_server)')
    if not 0.0 <= self.per_process_gpu_memory_fraction <= 1.0:
      raise ConfigError(f'per_process_gpu_memory_fraction must be between 0 and 1, got '
                        f'{self.per_process_gpu_memory_fraction}')
    if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
      raise ConfigError('TLS needs both --ssl_cert_file and --ssl_key_file')
    if self.ssl_config_file and self.ssl_cert_file:
      raise ConfigError('give --ssl_config_file or --ssl_cert_file and --ssl_key_file, not both')


def parse_grpc_channel_arguments(text: str) -> Tuple[Tuple[str, Union[int, str]], ...]:
  """TF Serving's --grpc_channel_arguments: "grpc.max_connection_age_ms=2000,key=value"."""
  arguments = []
  for item in filter(None, (part.strip() for part in (text or '').split(','))):
    key, sep, value = item.partition('=')
    if not sep or not key.strip():
      raise ConfigError(f'--grpc_channel_arguments: {item!r} is not key=value')
    value = value.strip()
    try:
      number = int(value)
      typed = number if -2**31 <= number < 2**31 else value
    except ValueError:
      typed = value
    arguments.append((key.strip(), typed))
  return tuple(arguments)


def session_config(options: ServerOptions):
  """The ConfigProto of every model version's Session.

  Unlike tensorflow_model_server, which leaves inter-op threads to TensorFlow, the default here
  runs a signature's ops on the calling thread: the caller is already a dedicated batch or model
  thread, and the hand-off to a pool thread and back cost more than the classifier's whole
  signature on the 2-CPU machines we measured (benchmarks/serving_latency.py).
  """
  from tensorflow.core.protobuf import config_pb2  # pylint: disable=import-outside-toplevel
  intra, inter = options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism
  if options.tensorflow_session_parallelism:
    intra = inter = options.tensorflow_session_parallelism
  config = config_pb2.ConfigProto(intra_op_parallelism_threads=intra,
                                  inter_op_parallelism_threads=inter)
  config.gpu_options.per_process_gpu_memory_fraction = options.per_process_gpu_memory_fraction
  return config
