"""The model server: TF Serving's gRPC and REST endpoints over one ModelService."""

import asyncio
import concurrent.futures
import logging
import os
import socket
import stat
import threading
from typing import Optional

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ganpipe.serving import config as config_lib
from ganpipe.serving import config_watch
from ganpipe.serving import grpc_services
from ganpipe.serving import handlers
from ganpipe.serving import rest
from ganpipe.serving import service_descriptors
from ganpipe.serving import tls

log = logging.getLogger(__name__)

_SERVICES = (service_descriptors.PREDICTION_SERVICE, service_descriptors.MODEL_SERVICE)
# sockaddr_un.sun_path holds 108 bytes on Linux, the last one a NUL.
_MAX_SOCKET_PATH_BYTES = 107


class ModelServer:
  """The gRPC and REST endpoints over one ModelService.

  `start()` loads every configured model before it opens the ports, as TF Serving does, so a
  client that can connect finds the models AVAILABLE (or their load errors in the status).
  """

  def __init__(self, options: config_lib.ServerOptions):
    self.options = options
    self.service = handlers.ModelService(
        options.model_config, options.file_system_poll_wait_seconds,
        options.batching if options.enable_batching else None,
        config_lib.session_config(options),
        options.num_request_iterations_for_warmup if options.enable_model_warmup else 0,
        # A request tensor decodes to no more than the largest request the server takes.
        max_input_bytes=options.max_message_size_bytes,
        check_method_names=options.enable_signature_method_name_check,
        max_load_retries=options.max_num_load_retries,
        load_retry_interval_seconds=options.load_retry_interval_micros / 1e6,
        allow_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        saved_model_tags=options.saved_model_tags,
        serialize_as_tensor_content=options.enable_serialization_as_tensor_content)
    self._grpc: Optional[grpc.aio.Server] = None
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._loop_thread: Optional[threading.Thread] = None
    self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
    self._rest: Optional[rest.RestServer] = None
    self._config_watcher: Optional[config_watch.ConfigFileWatcher] = None
    self._health = health.HealthServicer()
    self.port: Optional[int] = None
    self.rest_port: Optional[int] = None

  def start(self) -> 'ModelServer':
    self.service.start()
    # gRPC runs on its own event loop thread; `grpc_max_threads` threads run what leaves it:
    # unbatched model calls, and the RPCs that are plain functions (status, metadata, reloads).
    self._executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=self.options.grpc_max_threads, thread_name_prefix='grpc')
    self._loop = asyncio.new_event_loop()
    self._loop_thread = threading.Thread(target=self._loop.run_forever, name='grpc-loop',
                                         daemon=True)
    self._loop_thread.start()
    try:
      self.port = self._on_loop(self._start_grpc())
    except BaseException:
      self._grpc = None  # It never started serving.
      self.stop(grace=0)  # A failed start leaves nothing running: loop, pools, model pollers.
      raise
    for service in ('',) + _SERVICES:
      self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
    if self.options.rest_api_port is not None:
      try:
        self._rest = rest.RestServer(
            self.service, self.options.host, self.options.rest_api_port,
            self.options.max_message_size_bytes, self.options.metrics_path,
            timeout_seconds=self.options.rest_api_timeout_in_ms / 1000,
            num_threads=self.options.rest_api_num_threads or rest.DEFAULT_NUM_THREADS)
      except OSError as e:
        self.stop(grace=0)  # gRPC is serving already; a failed start leaves nothing running.
        raise OSError(f'cannot bind REST to {_bracket(self.options.host)}:'
                      f'{self.options.rest_api_port}: {e.strerror or e}') from e
      self._rest.start()
      self.rest_port = self._rest.port
    if self.options.model_config_file_poll_wait_seconds > 0:
      self._config_watcher = config_watch.ConfigFileWatcher(
          self.options.model_config_file, self.options.model_config_file_poll_wait_seconds,
          self._reload_config, self.options.model_config)
      self._config_watcher.start()
    return self

  def _reload_config(self, config) -> None:
    self.service.reload_config(model_management_pb2.ReloadConfigRequest(config=config))

  async def _start_grpc(self) -> int:
    size = self.options.max_message_size_bytes
    self._grpc = grpc.aio.server(
        migration_thread_pool=self._executor,
        # --grpc_channel_arguments last: they override the server's own.
        options=list({'grpc.max_receive_message_length': size,
                      'grpc.max_send_message_length': size,
                      # gRPC binds with SO_REUSEPORT by default, so a second server on a port
                      # in use would start and take half its clients; binding fails instead.
                      'grpc.so_reuseport': 0,
                      **dict(self.options.grpc_channel_arguments)}.items()))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        grpc_services.PredictionServicer(self.service, self._executor,
                                         self.options.enforce_session_run_timeout), self._grpc)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        grpc_services.ModelServicer(self.service), self._grpc)
    health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
    service_descriptors.register()
    reflection.enable_server_reflection(
        _SERVICES + (health_pb2.DESCRIPTOR.services_by_name['Health'].full_name,
                     reflection.SERVICE_NAME), self._grpc)
    address = f'{_bracket(self.options.host)}:{self.options.port}'
    tls_config = tls.load(self.options.ssl_config_file, self.options.ssl_cert_file,
                          self.options.ssl_key_file)
    try:
      port = self._add_port(address, tls_config)
    except RuntimeError as e:  # grpcio's "Failed to bind to address ...".
      raise OSError(f'cannot bind gRPC to {address}: is the port in use?') from e
    if not port:
      raise OSError(f'cannot bind gRPC to {address}')
    if self.options.grpc_socket_path:
      _check_socket_path(self.options.grpc_socket_path)
      socket_address = f'unix:{self.options.grpc_socket_path}'
      try:
        bound = self._add_port(socket_address, tls_config)
      except RuntimeError:
        bound = 0
      if not bound:
        raise OSError(f'cannot listen on the UNIX socket {self.options.grpc_socket_path}: is '
                      'its folder missing or not writable?')
    await self._grpc.start()
    return port

  def _add_port(self, address: str, tls_config: Optional[tls.TlsConfig]) -> int:
    if tls_config is not None:
      return self._grpc.add_secure_port(address, tls_config.server_credentials())
    return self._grpc.add_insecure_port(address)

  def stop(self, grace: Optional[float] = None) -> None:
    """Stops accepting requests, lets in-flight ones finish, then unloads the models.

    Stopping a stopped server does nothing.
    """
    grace = self.options.shutdown_grace_seconds if grace is None else grace
    self._health.enter_graceful_shutdown()
    if self._config_watcher is not None:
      self._config_watcher.stop()
      self._config_watcher = None
    if self._rest is not None:
      self._rest.stop()
      self._rest = None
    if self._grpc is not None:
      self._on_loop(self._grpc.stop(grace))
      self._grpc = None
    self._stop_loop()
    self.service.stop()

  def _on_loop(self, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

  def _stop_loop(self) -> None:
    if self._loop is not None and self._loop_thread is not None:
      self._loop.call_soon_threadsafe(self._loop.stop)
      self._loop_thread.join()
      self._loop.close()
      self._loop_thread = None
    if self._executor is not None:
      self._executor.shutdown(wait=True)
      self._executor = None


def _check_socket_path(path: str) -> None:
  """Raises OSError if `path` cannot become this server's socket without harm.

  gRPC removes whatever socket is at the path before it binds, a live one too: a second server
  would silently take the path from the first. A stale socket (left by a killed server) is fine.
  """
  if len(os.fsencode(path)) > _MAX_SOCKET_PATH_BYTES:
    raise OSError(f'--grpc_socket_path {path} is {len(os.fsencode(path))} bytes long; UNIX '
                  f'socket paths are limited to {_MAX_SOCKET_PATH_BYTES}')
  if not os.path.lexists(path):
    return
  if not stat.S_ISSOCK(os.lstat(path).st_mode):
    raise OSError(f'--grpc_socket_path {path} exists and is not a socket; remove it or choose '
                  'another path')
  with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
    probe.settimeout(1.0)
    try:
      probe.connect(path)
    except OSError:
      return  # Nobody listens: a socket left behind, which gRPC replaces.
  raise OSError(f'another server is listening on unix:{path}')


def _bracket(host: str) -> str:
  return f'[{host}]' if ':' in host and not host.startswith('[') else host
