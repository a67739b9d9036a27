"""The REST server's connections: a thread each, a bound on how many, a clean close, and bodies.

HTTPServer is http.server's ThreadingHTTPServer with at most MAX_CONNECTIONS connections open
(one more is answered 503 by a single refuser thread); Connections tracks which connections are
between requests, so that stopping the server closes the idle ones and waits for the busy ones;
BodyReader reads a request's body, whole or not at all.
"""

import http.client
import http.server
import io
import json
import logging
import queue
import socket
import sys
import threading
import time
from typing import Dict

import grpc

from ganpipe.serving import errors

log = logging.getLogger('ganpipe.serving.rest')

# Open REST connections at most; each holds a thread while it is open, idle or not.
MAX_CONNECTIONS = 1024
_TOO_MANY_CONNECTIONS_BODY = json.dumps(
    {'error': 'the server has too many open REST connections; retry later'}).encode()
_TOO_MANY_CONNECTIONS = (b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
                         b'Connection: close\r\nContent-Length: %d\r\n\r\n%s' % (
                             len(_TOO_MANY_CONNECTIONS_BODY), _TOO_MANY_CONNECTIONS_BODY))

class HTTPServer(http.server.ThreadingHTTPServer):
  """One thread per connection, and no more than `max_connections` of them.

  A connection past the limit gets no thread of its own: one refuser thread answers it 503 and
  closes it, so clients that open connections and hold them (sending headers slowly, say)
  cannot make the server start threads without bound.
  """

  max_connections = MAX_CONNECTIONS

  def __init__(self, *args, **kwargs):
    self._open = 0
    self._open_lock = threading.Lock()
    self._last_warning = -float('inf')
    self._refused: 'queue.Queue' = queue.Queue(maxsize=64)
    self._refuser = threading.Thread(target=self._refuse_forever, name='rest-refuser',
                                     daemon=True)
    self._refuser.start()
    super().__init__(*args, **kwargs)  # On a bind error it calls server_close: the refuser ends.

  def server_close(self):
    super().server_close()
    self._refused.put(None)  # After the queued ones: the refuser's last item.
    self._refuser.join()

  def process_request(self, request, client_address):
    with self._open_lock:
      full = self._open >= self.max_connections
      if not full:
        self._open += 1
    if not full:
      super().process_request(request, client_address)
      return
    now = time.monotonic()
    if now - self._last_warning > 10:  # A flood would otherwise flood the log too.
      self._last_warning = now
      log.warning('REST: %d connections open; refusing new ones (this one from %s)',
                  self.max_connections, client_address)
    try:
      self._refused.put_nowait(request)
    except queue.Full:  # A flood: close at once, unanswered.
      self.shutdown_request(request)

  def _refuse_forever(self) -> None:
    while True:
      request = self._refused.get()
      if request is None:
        return
      try:
        request.settimeout(0.2)
        request.sendall(_TOO_MANY_CONNECTIONS)
        request.shutdown(socket.SHUT_WR)
        # Read what the client sent before closing (closing with it unread resets the
        # connection, and the client could lose the answer), for half a second at most.
        deadline = time.monotonic() + 0.5
        while request.recv(65536) and time.monotonic() < deadline:
          pass
      except OSError:
        pass
      finally:
        request.close()

  def process_request_thread(self, request, client_address):
    try:
      super().process_request_thread(request, client_address)
    finally:
      with self._open_lock:
        self._open -= 1

  def handle_error(self, request, client_address):
    # socketserver prints a traceback to stderr for anything a connection raises; a client that
    # hangs up before its answer is normal traffic, anything else a bug to log.
    if isinstance(sys.exc_info()[1], ConnectionError):
      log.debug('REST client %s hung up: %s', client_address, sys.exc_info()[1])
    else:
      log.exception('REST connection from %s failed', client_address)


class Connections:
  """The open connections, and which of them are between requests."""

  def __init__(self):
    self._lock = threading.Lock()
    self._idle: Dict[http.server.BaseHTTPRequestHandler, bool] = {}
    self.closing = False

  def add(self, handler: http.server.BaseHTTPRequestHandler) -> None:
    with self._lock:
      self._idle[handler] = True

  def remove(self, handler: http.server.BaseHTTPRequestHandler) -> None:
    with self._lock:
      self._idle.pop(handler, None)

  def set_idle(self, handler: http.server.BaseHTTPRequestHandler, idle: bool) -> bool:
    """Marks `handler` busy or idle; False once the server is closing (take no new request)."""
    with self._lock:
      self._idle[handler] = idle
      return not self.closing

  def close_idle(self) -> None:
    with self._lock:
      self.closing = True
      idle = [handler for handler, is_idle in self._idle.items() if is_idle]
    for handler in idle:
      try:  # Its blocked read for the next request line ends; any answer still goes out.
        handler.connection.shutdown(socket.SHUT_RD)
      except OSError:
        pass  # The client closed it already.


class BodyReader:
  """A request handler's body reading; the handler sets `max_body_bytes`."""

  max_body_bytes: int
  close_connection: bool
  command: str
  headers: http.client.HTTPMessage
  rfile: io.BufferedIOBase
  timeout: float

  def read_body(self, required: bool) -> bytes:
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
