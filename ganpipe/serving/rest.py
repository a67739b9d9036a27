"""TF Serving's REST API (`/v1/models/...`) over the same handlers as gRPC."""

import contextlib
import http.server
import json
import logging
import os
import re
import threading
import time
from typing import Any, Dict, Optional

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import regression_pb2

from ganpipe.serving import errors
from ganpipe.serving import handlers
from ganpipe.serving import manager as manager_lib
from ganpipe.serving import metrics as metrics_lib
from ganpipe.serving import rest_json
from ganpipe.serving import rest_transport as transport

log = logging.getLogger(__name__)

_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)'
                   r'(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?'
                   r'(?P<rest>/metadata|:predict|:classify|:regress)?$')


# A keep-alive connection that sends nothing for this long is closed, so idle clients cannot hold
# request threads forever (ThreadingHTTPServer has one per connection). A request that is still
# arriving gets the same time for each read.
IDLE_TIMEOUT_SECONDS = 60.0
# TF Serving's defaults for --rest_api_timeout_in_ms and --rest_api_num_threads.
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_NUM_THREADS = 4 * (os.cpu_count() or 1)
# The metrics' API label of each timed route, as TF Serving names it.
_API = {':predict': 'predict', ':classify': 'classify', ':regress': 'regress',
        '/metadata': 'get_model_metadata'}


class RestServer:
  """A threaded HTTP server; `stop()` lets in-flight requests finish and closes idle connections.

  Without the second part, one client holding an idle keep-alive connection (any HTTP client
  with a connection pool) would keep `stop()`, and so the server process, from ever finishing.
  """

  def __init__(self, service: handlers.ModelService, host: str, port: int,
               max_body_bytes: int, metrics_path: Optional[str] = None,
               timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
               num_threads: int = DEFAULT_NUM_THREADS):
    """A server for `service` on `host`:`port`; nothing is bound until this returns.

    Args:
      metrics_path: where to serve the Prometheus metrics; None: nowhere.
      timeout_seconds: how long a request may wait, once its body has arrived, for a free
        thread and for the model (TF Serving's --rest_api_timeout_in_ms); 0 or less: forever.
      num_threads: how many requests are processed at once (--rest_api_num_threads). More
        connections may be open; their requests wait their turn.
    """
    if num_threads < 1:
      raise ValueError(f'num_threads must be at least 1, got {num_threads}')
    self._connections = transport.Connections()
    handler = type('Handler', (_Handler,), {
        'service': service, 'max_body_bytes': max_body_bytes, 'connections': self._connections,
        'metrics_path': metrics_path,
        'timeout_seconds': timeout_seconds if timeout_seconds > 0 else None,
        'slots': threading.BoundedSemaphore(num_threads)})
    self._httpd = transport.HTTPServer((host, port), handler)
    # Shutdown joins request threads, so in-flight requests finish before the process exits.
    self._httpd.daemon_threads = False
    self._httpd.block_on_close = True
    self._thread = threading.Thread(target=self._httpd.serve_forever, name='rest', daemon=True)

  @property
  def port(self) -> int:
    return self._httpd.server_address[1]

  def start(self) -> None:
    self._thread.start()

  def stop(self) -> None:
    self._httpd.shutdown()  # No new connections.
    self._connections.close_idle()  # No new requests; those in flight finish.
    self._httpd.server_close()  # Joins the connection threads.


class _Handler(http.server.BaseHTTPRequestHandler):
  """Routes `/v1/models/<name>[/versions/<v>|/labels/<l>][/metadata|:predict]`."""

  service: handlers.ModelService
  max_body_bytes: int
  connections: transport.Connections
  metrics_path: Optional[str]
  timeout_seconds: Optional[float]
  slots: threading.BoundedSemaphore  # One per request being processed.
  protocol_version = 'HTTP/1.1'
  server_version = 'ganpipe-model-server'
  timeout = IDLE_TIMEOUT_SECONDS

  def setup(self):
    super().setup()
    self.connections.add(self)

  def finish(self):
    self.connections.remove(self)
    super().finish()

  def parse_request(self) -> bool:
    # The request line has arrived: from here on this request is in flight, and stop() waits.
    accepting = self.connections.set_idle(self, False)
    parsed = super().parse_request()  # Sets close_connection from the request's headers.
    if not accepting:
      self.close_connection = True  # Answered, but the connection closes after it.
    return parsed

  def handle_one_request(self):
    super().handle_one_request()
    if not self.connections.set_idle(self, True):
      self.close_connection = True

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    log.debug('%s - %s', self.address_string(), format % args)

  def do_GET(self):  # pylint: disable=invalid-name
    self._respond(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    self._respond(self._post)

  def _respond(self, action) -> None:
    started, code, route = time.perf_counter(), grpc.StatusCode.OK, None
    content_type = 'application/json'
    try:
      # Read first, whatever the route: a body left unread would be taken for the next request.
      self._body = self._read_body(required=self.command == 'POST')
      self._deadline = (time.monotonic() + self.timeout_seconds
                        if self.timeout_seconds is not None else None)
      path = self.path.split('?', 1)[0]
      if self.metrics_path and path == self.metrics_path and self.command == 'GET':
        status, payload = 200, self.service.metrics.render().encode('utf-8')
        content_type = metrics_lib.CONTENT_TYPE
      else:
        route = _PATH.match(path)
        if route is None:
          raise errors.not_found(
              f'Malformed request: {self.command} {self.path}; expected '
              '/v1/models/<name>[/versions/<v>|/labels/<l>][/metadata|:predict]')
        with self._slot():
          status, payload = 200, json.dumps(action(route)).encode('utf-8')
    except errors.ServingError as e:
      code = e.code
      status, payload = e.http_status, json.dumps({'error': e.message}).encode('utf-8')
    except Exception as e:  # pylint: disable=broad-except
      code = grpc.StatusCode.INTERNAL
      log.exception('REST %s %s failed', self.command, self.path)
      status, payload = 500, json.dumps({'error': f'{type(e).__name__}: {e}'}).encode('utf-8')
    api = _API.get(route['rest']) if route else None
    if api:
      self.service.metrics.record(route['name'], api, 'REST', code, time.perf_counter() - started)
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(payload)))
    if self.connections.closing:
      self.close_connection = True  # The server is stopping: this is the connection's last answer.
    if self.close_connection:
      self.send_header('Connection', 'close')
    self.end_headers()
    self.wfile.write(payload)

  @contextlib.contextmanager
  def _slot(self):
    """One of the --rest_api_num_threads processing slots, for at most the request's timeout."""
    remaining = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
    if not self.slots.acquire(timeout=remaining):
      raise errors.ServingError(
          grpc.StatusCode.DEADLINE_EXCEEDED,
          f'the server was busy: no REST thread became free within the request timeout of '
          f'{self.timeout_seconds * 1000:g} ms (--rest_api_timeout_in_ms)')
    try:
      yield
    finally:
      self.slots.release()

  def _spec(self, route) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=route['name'])
    if route['version']:
      spec.version.value = int(route['version'])
    elif route['label']:
      spec.version_label = route['label']
    return spec

  def _get(self, route) -> Dict[str, Any]:
    spec = self._spec(route)
    if route['rest'] == '/metadata':
      request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
      request.model_spec.CopyFrom(spec)
      response = self.service.get_model_metadata(request)
      signature_map = get_model_metadata_pb2.SignatureDefMap()
      response.metadata['signature_def'].Unpack(signature_map)
      return {'model_spec': json_format.MessageToDict(response.model_spec,
                                                      preserving_proto_field_name=True),
              'metadata': {'signature_def': json_format.MessageToDict(
                  signature_map, preserving_proto_field_name=True)}}
    if route['rest']:
      raise errors.ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                f'{route["rest"]} needs POST, not GET')
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.CopyFrom(spec)
    response = self.service.get_model_status(request)
    return {'model_version_status': [{
        'version': str(status.version),
        'state': manager_lib.State(status.state).name,
        'status': {'error_code': handlers.status_code(status.status.error_code).name,
                   'error_message': status.status.error_message},
    } for status in response.model_version_status]}

  def _post(self, route) -> Dict[str, Any]:
    if route['rest'] not in (':predict', ':classify', ':regress'):
      raise errors.invalid_argument(f'POST {self.path}: expected :predict, :classify or '
                                    ':regress')
    body = self._read_json()
    spec = self._spec(route)
    if route['rest'] != ':predict':
      return self._examples(route['rest'], spec, body)
    loaded = self.service.resolve(spec)
    signature = loaded.signature(body.get('signature_name'))
    if ('instances' in body) == ('inputs' in body):
      raise errors.invalid_argument('the request must have exactly one of "instances" (row '
                                    'format) or "inputs" (columnar format)')
    dtypes = {key: dtype for key, (dtype, _) in signature.inputs.items()}
    if 'instances' in body:
      inputs = rest_json.rows_to_inputs(body['instances'], dtypes)
    else:
      inputs = rest_json.columns_to_inputs(body['inputs'], dtypes)
    outputs = self.service.run(signature, inputs, self._deadline)
    if 'instances' in body:
      return {'predictions': rest_json.outputs_to_rows(outputs)}
    if len(outputs) == 1:
      key, value = next(iter(outputs.items()))
      return {'outputs': rest_json.to_json(value, key)}
    return {'outputs': {key: rest_json.to_json(value, key) for key, value in outputs.items()}}

  def _examples(self, verb: str, spec: model_pb2.ModelSpec,
                body: Dict[str, Any]) -> Dict[str, Any]:
    """:classify or :regress: {"examples": [...], "context": {...}} -> {"result": [...]}."""
    examples = body.get('examples')
    if not isinstance(examples, list) or not examples:
      raise errors.invalid_argument('"examples" must be a non-empty list of feature objects')
    classify = verb == ':classify'
    request = (classification_pb2.ClassificationRequest() if classify else
               regression_pb2.RegressionRequest())
    request.model_spec.CopyFrom(spec)
    request.model_spec.signature_name = body.get('signature_name', '')
    if 'context' in body:
      target = request.input.example_list_with_context
      rest_json.fill_example(target.context, body['context'])
    else:
      target = request.input.example_list
    for features in examples:
      rest_json.fill_example(target.examples.add(), features)
    if not classify:
      response = self.service.regress(request, self._deadline)
      return {'result': [item.value for item in response.result.regressions]}
    response = self.service.classify(request, self._deadline)
    return {'result': [[[item.label, item.score] for item in result.classes]
                       for result in response.result.classifications]}

  def _read_json(self) -> Dict[str, Any]:
    try:
      body = json.loads(self._body or b'null')
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise errors.invalid_argument(f'JSON Parse error: {e}') from e
    except RecursionError:
      raise errors.invalid_argument('JSON Parse error: nested too deeply') from None
    if not isinstance(body, dict):
      raise errors.invalid_argument('the request body must be a JSON object')
    if not isinstance(body.get('signature_name', ''), str):
      raise errors.invalid_argument(f'"signature_name" must be a string, got '
                                    f'{json.dumps(body["signature_name"])[:40]}')
    return body

  def _read_body(self, required: bool) -> bytes:
    """The whole request body, sent with a Content-Length or chunked.

    A body this server cannot read to its end, or will not (over the size limit), is an error,
    and the connection closes after the answer, so its rest is never read as a request.
    """
    encoding = self.headers.get('Transfer-Encoding', '').strip().lower()
    length = self.headers.get('Content-Length')
    try:
      if encoding == 'chunked':
        return self._read_chunked()
      if encoding:
        raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                  f'Transfer-Encoding {encoding!r} is not supported; send the '
                                  'body with a Content-Length, or chunked')
      if length is None:
        if required:
          raise errors.invalid_argument(f'{self.command} needs a Content-Length header, or a '
                                        'chunked body')
        return b''
      if not length.strip().isdigit():
        raise errors.invalid_argument(f'Content-Length {length!r} is not a number of bytes')
      size = int(length)
      self._check_size(size)
      body = self.rfile.read(size)
      if len(body) < size:
        raise errors.invalid_argument(f'the request body ended after {len(body)} of its {size} '
                                      'bytes')
      return body
    except TimeoutError:
      self.close_connection = True
      raise errors.invalid_argument(f'the request body did not arrive within {self.timeout:g} '
                                    's') from None
    except errors.ServingError:
      self.close_connection = True
      raise

  def _read_chunked(self) -> bytes:
    chunks, total = [], 0
    while True:
      line = self.rfile.readline(1024)
      try:
        size = int(line.split(b';', 1)[0].strip(), 16)  # Chunk extensions are ignored.
      except ValueError:
        raise errors.invalid_argument(f'malformed chunked body: chunk size line {line[:40]!r}'
                                      ) from None
      if size == 0:
        break
      total += size
      self._check_size(total, so_far=True)
      chunk = self.rfile.read(size)
      if len(chunk) < size or self.rfile.read(2) != b'\r\n':
        raise errors.invalid_argument('malformed chunked body: a chunk ended early')
      chunks.append(chunk)
    while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
      pass  # Trailer fields, unused.
    return b''.join(chunks)

  def _check_size(self, size: int, so_far: bool = False) -> None:
    if size > self.max_body_bytes:
      # Reading on would hold the whole oversize body in memory.
      raise errors.too_large(
          f'request body of {"at least " if so_far else ""}{size} bytes exceeds the limit of '
          f'{self.max_body_bytes} bytes')
