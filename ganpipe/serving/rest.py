"""TF Serving's REST API (`/v1/models/...`) over the same handlers as gRPC."""

import contextlib
import http.server
import json
import logging
import os
import re
import threading
import time
import urllib.parse
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
from ganpipe.serving import servable as servable_lib

log = logging.getLogger(__name__)

# The routes, as model_servers/http_rest_api_util.cc matches them (case-insensitively); a path
# outside /v1/ is not the API's (http_server.cc).
_API_PATH = re.compile(r'(?i)/v1/.*')
_POST_PATH = re.compile(r'(?i)/v1/models/(?P<name>[^/:]+)'
                        r'(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?'
                        r':(?P<verb>classify|regress|predict)')
_GET_PATH = re.compile(r'(?i)/v1/models(?:/(?P<name>[^/:]+))?'
                       r'(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?'
                       r'(?:/(?P<subresource>metadata))?')
_MAX_VERSION = 2**63 - 1
# What libevent answers for a path no handler takes.
_NOT_FOUND_HTML = (b'<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n'
                   b'<H1>Not Found</H1>\n</BODY></HTML>\n')


# A keep-alive connection that sends nothing for this long is closed, so idle clients cannot hold
# request threads forever (ThreadingHTTPServer has one per connection). A request that is still
# arriving gets the same time for each read.
IDLE_TIMEOUT_SECONDS = 60.0
# TF Serving's defaults for --rest_api_timeout_in_ms and --rest_api_num_threads.
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_NUM_THREADS = 4 * (os.cpu_count() or 1)
# The metrics' API label of each timed route, as TF Serving names it.
_API = {'predict': 'predict', 'classify': 'classify', 'regress': 'regress',
        'metadata': 'get_model_metadata'}


class _EmptyAnswer(Exception):
  """An error answered with its status and no body."""

  def __init__(self, error: errors.ServingError):
    super().__init__(error.message)
    self.error = error


def _message_json(message) -> Dict[str, Any]:
  """A message as protobuf's JSON printer writes it with TF Serving's options: every field,
  defaults too, with the proto's field names."""
  return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                   including_default_value_fields=True)


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


class _Handler(transport.BodyReader, http.server.BaseHTTPRequestHandler):
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
    self._respond()

  do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # pylint: disable=invalid-name

  def _respond(self) -> None:
    started, code, route, api = time.perf_counter(), grpc.StatusCode.OK, None, None
    metrics_lib.track_version()
    content_type = 'application/json'
    try:
      # Read first, whatever the route: a body left unread would be taken for the next request.
      self._body = self.read_body(required=self.command == 'POST')
      self._deadline = (time.monotonic() + self.timeout_seconds
                        if self.timeout_seconds is not None else None)
      path = self.path.split('?', 1)[0]
      if self.metrics_path and path == self.metrics_path and self.command == 'GET':
        status, payload = 200, self.service.metrics.render().encode('utf-8')
        content_type = metrics_lib.CONTENT_TYPE
      elif not _API_PATH.fullmatch(path):
        status, payload, content_type = 404, _NOT_FOUND_HTML, 'text/html'
      else:
        route, action = self._route(path)
        api = _API.get(route.get('verb') or route.get('subresource') or '')
        with self._slot():
          answer = action(route)
        status = 200
        payload = (answer if isinstance(answer, str) else json.dumps(answer, indent=1)).encode(
            'utf-8', 'surrogateescape')  # strings that are not UTF-8 go out as they came
    except _EmptyAnswer as e:
      code, status, payload = e.error.code, e.error.http_status, b''
    except errors.ServingError as e:
      code = e.code
      status = e.http_status
      payload = json.dumps({'error': e.message}, indent=4, ensure_ascii=False).encode(
          'utf-8', 'surrogateescape')
    except Exception as e:  # pylint: disable=broad-except
      code = grpc.StatusCode.INTERNAL
      log.exception('REST %s %s failed', self.command, self.path)
      status, payload = 500, json.dumps({'error': f'{type(e).__name__}: {e}'}).encode('utf-8')
    if api and route.get('name'):
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

  def _route(self, path: str):
    """The request's route and its action, as ProcessRequest (http_rest_api_handler.cc) picks
    them; a request that none takes is `Malformed request: <METHOD> <path>`."""
    found = None
    if self.command == 'POST':
      found = _POST_PATH.fullmatch(path)
      # The verb matches case-insensitively, but only the lower-case verbs are dispatched.
      if found and found['verb'] not in ('predict', 'classify', 'regress'):
        found = None
    elif self.command == 'GET':
      found = _GET_PATH.fullmatch(path)
    if found is None:
      raise errors.invalid_argument(f'Malformed request: {self.command} {path}')
    route = found.groupdict()
    # ParseModelInfo (http_rest_api_util.cc): the name and label are URL-decoded; a version
    # that is no int64 is refused with an empty body.
    for key in ('name', 'label'):
      if route.get(key):
        route[key] = urllib.parse.unquote(route[key])
    if route.get('version') and int(route['version']) > _MAX_VERSION:
      raise _EmptyAnswer(errors.invalid_argument(
          f'Failed to convert version: {route["version"]} to numeric.'))
    if self.command == 'POST':
      return route, self._post
    return route, self._get

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

  def _get(self, route) -> Any:
    """Status, or metadata: as ProcessModelStatusRequest and ProcessModelMetadataRequest print
    them, every field, default or not (ToJsonString in http_rest_api_util.cc)."""
    if not route['name']:
      raise errors.invalid_argument('Missing model name in request.')
    spec = self._spec(route)
    if route['subresource'] == 'metadata':
      request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
      request.model_spec.CopyFrom(spec)
      response = self.service.get_model_metadata(request)
      signature_map = get_model_metadata_pb2.SignatureDefMap()
      response.metadata['signature_def'].Unpack(signature_map)
      return {'model_spec': _message_json(response.model_spec),
              'metadata': {'signature_def': _message_json(signature_map)}}
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.CopyFrom(spec)
    response = self.service.get_model_status(request)
    return {'model_version_status': [{
        'version': str(status.version),
        'state': manager_lib.State(status.state).name,
        'status': {'error_code': handlers.status_code(status.status.error_code).name,
                   'error_message': status.status.error_message},
    } for status in response.model_version_status]}

  def _post(self, route) -> str:
    spec = self._spec(route)
    if route['verb'] != 'predict':
      return self._examples(route['verb'], spec)
    document = self._read_json(spec)
    loaded = self.service.resolve(spec)
    # GetInfoMap (http_rest_api_handler.cc): REST names an unknown signature so, not as Predict.
    name = spec.signature_name or servable_lib.DEFAULT_SIGNATURE
    if name not in loaded.signatures:
      raise errors.invalid_argument(f'Serving signature name: "{name}" not found in signature '
                                    'def')
    signature = loaded.signatures[name]
    if not signature.inputs:
      raise errors.invalid_argument('Failed to get input map for signature: '
                                    f'{spec.signature_name or "DEFAULT"}')
    # FillPredictRequestFromJson (util/json_tensor.cc).
    dtypes = {key: dtype for key, (dtype, _) in signature.inputs.items()}
    if 'instances' in document and 'inputs' in document:
      raise rest_json.format_error(document, "Not formatted correctly expecting only one of "
                                             "'inputs' or 'instances' keys to exist ")
    if 'instances' in document:
      inputs = rest_json.rows_to_inputs(document, document['instances'], dtypes)
    elif 'inputs' in document:
      inputs = rest_json.columns_to_inputs(document['inputs'], dtypes)
    else:
      raise errors.invalid_argument("Missing 'inputs' or 'instances' key")
    outputs = self.service.run(signature, inputs, self._deadline)
    if 'instances' in document:
      return rest_json.predictions_json(outputs)
    return rest_json.outputs_json(outputs)

  def _examples(self, verb: str, spec: model_pb2.ModelSpec) -> str:
    """:classify or :regress, as FillClassifyRegressRequestFromJson reads the request:
    {"examples": [...], "context": {...}} -> {"results": [...]}."""
    classify = verb == 'classify'
    request = (classification_pb2.ClassificationRequest() if classify else
               regression_pb2.RegressionRequest())
    request.model_spec.CopyFrom(spec)
    document = self._read_json(request.model_spec)
    if 'context' in document:
      target = request.input.example_list_with_context
      rest_json.fill_example(target.context, document['context'])
    else:
      target = request.input.example_list
    examples = document.get('examples')
    if 'examples' not in document:
      raise rest_json.format_error(document, "When method is classify, key 'examples' is "
                                             'expected and was not found')
    if not isinstance(examples, list):
      raise rest_json.format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
      raise rest_json.format_error(document, "'examples' value is an empty array")
    for features in examples:
      rest_json.fill_example(target.examples.add(), features)
    if not classify:
      response = self.service.regress(request, self._deadline)
      return rest_json.results_json([item.value for item in response.result.regressions])
    response = self.service.classify(request, self._deadline)
    return rest_json.results_json([[[item.label, item.score] for item in result.classes]
                                   for result in response.result.classifications])

  def _read_json(self, spec: model_pb2.ModelSpec) -> Dict[str, Any]:
    """The request's JSON object (ParseJson), its `signature_name` put in `spec` (FillSignature)."""
    if not self._body:
      raise errors.invalid_argument('JSON Parse error: The document is empty')
    try:
      document = json.loads(self._body)
    except json.JSONDecodeError as e:
      raise errors.invalid_argument(f'JSON Parse error: {e.msg} at offset: {e.pos}') from None
    except UnicodeDecodeError as e:
      raise errors.invalid_argument(f'JSON Parse error: Invalid encoding in string. at offset: '
                                    f'{e.start}') from None
    except RecursionError:
      raise errors.invalid_argument('JSON Parse error: nested too deeply') from None
    if not isinstance(document, dict):
      raise rest_json.format_error(document, 'Is not object')
    if 'signature_name' in document:
      if not isinstance(document['signature_name'], str):
        raise errors.invalid_argument(
            f'JSON Value: {rest_json.value_text(document)} not formatted correctly. '
            "'signature_name' key must be a string value.")
      spec.signature_name = document['signature_name']
    return document
