"""gRPC servicers for tensorflow.serving.PredictionService and ModelService, on grpc.aio.

Predict and Classify are coroutines on the server's event loop: a request is parsed, checked and
answered there, and only the model call leaves the loop, for a batch thread or the model
executor. No thread is handed a request, which in Python's gRPC costs more than batching saves.
GetModelMetadata, GetModelStatus and HandleReloadConfigRequest are plain functions that the
server runs on its thread pool: a reload loads models, which must not stall the loop.
"""

import concurrent.futures
import functools
import logging
import time
from typing import Optional

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ganpipe.serving import errors
from ganpipe.serving import handlers
from ganpipe.serving import metrics as metrics_lib

log = logging.getLogger(__name__)

# A status message travels in an HTTP/2 header, and clients drop a call whose headers pass 16 KiB
# (8 KiB by default in some), reporting only "received metadata size exceeds hard limit" instead
# of the status. Messages can quote what a client sent (input names, a model name), so they are
# cut to a size that always arrives, even percent-encoded.
MAX_STATUS_MESSAGE_CHARS = 2000


def status_message(message: str) -> str:
  if len(message) <= MAX_STATUS_MESSAGE_CHARS:
    return message
  return (f'{message[:MAX_STATUS_MESSAGE_CHARS]}... '
          f'({len(message) - MAX_STATUS_MESSAGE_CHARS} more characters)')


def _rpc(method=None, api: Optional[str] = None):
  """Turns ServingErrors into their status codes, and anything else into INTERNAL, never a crash.

  With `api`, the request's count and latency go to the service's metrics under that name.
  """
  if method is None:
    return functools.partial(_rpc, api=api)

  @functools.wraps(method)
  def wrapper(self, request, context):
    started, code = time.perf_counter(), grpc.StatusCode.OK
    metrics_lib.track_version()
    try:
      return method(self, request, context)
    except errors.ServingError as e:
      code = e.code
      context.abort(e.code, status_message(e.message))
    except Exception as e:  # pylint: disable=broad-except
      code = grpc.StatusCode.INTERNAL
      log.exception('%s failed', method.__name__)
      context.abort(grpc.StatusCode.INTERNAL, status_message(f'{type(e).__name__}: {e}'))
    finally:
      if api:
        self._service.metrics.record(request.model_spec.name, api, 'GRPC', code,
                                     time.perf_counter() - started)
  return wrapper


def _async_rpc(method=None, api: Optional[str] = None):
  """`_rpc` for coroutines."""
  if method is None:
    return functools.partial(_async_rpc, api=api)

  @functools.wraps(method)
  async def wrapper(self, request, context):
    started = time.perf_counter()
    metrics_lib.track_version()

    def record(code):
      if api:
        self._service.metrics.record(request.model_spec.name, api, 'GRPC', code,
                                     time.perf_counter() - started)
    # grpc.aio's abort sends the status to the client before it raises
    # (grpc/_cython/_cygrpc/aio/server.pyx.pxi, _ServicerContext.abort), so a failed request is
    # counted first: a client that has seen the error and then scrapes the metrics finds it.
    try:
      response = await method(self, request, context)
    except errors.ServingError as e:
      record(e.code)
      await context.abort(e.code, status_message(e.message))
    except Exception as e:  # pylint: disable=broad-except
      record(grpc.StatusCode.INTERNAL)
      log.exception('%s failed', method.__name__)
      await context.abort(grpc.StatusCode.INTERNAL, status_message(f'{type(e).__name__}: {e}'))
    record(grpc.StatusCode.OK)
    return response
  return wrapper


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

  def __init__(self, service: handlers.ModelService, executor: concurrent.futures.Executor,
               enforce_deadlines: bool = True):
    """`enforce_deadlines`: a call's deadline bounds its wait for the model, as TF Serving's
    --enforce_session_run_timeout makes it bound the session run."""
    self._service = service
    self._executor = executor  # Runs model calls that do not go to a batch.
    self._enforce_deadlines = enforce_deadlines

  def _deadline(self, context) -> Optional[float]:
    """The call's deadline in time.monotonic() seconds, or None."""
    remaining = context.time_remaining() if self._enforce_deadlines else None
    return None if remaining is None else time.monotonic() + remaining

  @_async_rpc(api='predict')
  async def Predict(self, request, context):  # pylint: disable=invalid-name
    return await self._service.handle_async(request, self._executor, self._deadline(context))

  @_async_rpc(api='classify')
  async def Classify(self, request, context):  # pylint: disable=invalid-name
    return await self._service.handle_async(request, self._executor, self._deadline(context))

  @_rpc(api='get_model_metadata')
  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return self._service.get_model_metadata(request)

  @_async_rpc(api='regress')
  async def Regress(self, request, context):  # pylint: disable=invalid-name
    return await self._service.handle_async(request, self._executor, self._deadline(context))

  @_async_rpc  # TF Serving counts no MultiInference in its request metrics.
  async def MultiInference(self, request, context):  # pylint: disable=invalid-name
    return await self._service.multi_inference_async(request, self._executor,
                                                     self._deadline(context))


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus and HandleReloadConfigRequest."""

  def __init__(self, service: handlers.ModelService):
    self._service = service

  @_rpc
  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    return self._service.get_model_status(request)

  @_rpc
  def HandleReloadConfigRequest(self, request, context):  # pylint: disable=invalid-name
    return self._service.reload_config(request)
