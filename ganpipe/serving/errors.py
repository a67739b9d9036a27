"""Serving errors that carry a gRPC status code, as TF Serving's do."""

from typing import Optional

import grpc

# TF Serving's REST API maps canonical codes to HTTP statuses this way (http_server.cc,
# ToHTTPStatusCode); anything else is 500.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class ServingError(Exception):
  """A request failure with the status code a client should see."""

  def __init__(self, code: grpc.StatusCode, message: str, http_status: Optional[int] = None):
    """`http_status`: the REST status, where it should differ from the code's usual one."""
    super().__init__(message)
    self.code = code
    self.message = message
    self._http_status = http_status

  @property
  def http_status(self) -> int:
    if self._http_status is not None:
      return self._http_status
    return _HTTP_STATUS.get(self.code, 500)


def not_found(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid_argument(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def too_large(message: str) -> ServingError:
  """RESOURCE_EXHAUSTED for a request over a size limit.

  Over REST it is 413 (Payload Too Large), not the 429 (Too Many Requests) that TF Serving gives
  every RESOURCE_EXHAUSTED: a client must not retry the same request later.
  """
  return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)
