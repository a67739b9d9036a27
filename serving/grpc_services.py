"""gRPC servicers for tensorflow.serving.PredictionService and ModelService."""

import functools
import logging

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import errors
from serving import handlers

log = logging.getLogger(__name__)


def _rpc(method):
  """Turns ServingErrors into their status codes, and anything else into INTERNAL, never a crash."""

  @functools.wraps(method)
  def wrapper(self, request, context):
    try:
      return method(self, request, context)
    except errors.ServingError as e:
      context.abort(e.code, e.message)
    except Exception as e:  # pylint: disable=broad-except
      log.exception('%s failed', method.__name__)
      context.abort(grpc.StatusCode.INTERNAL, f'{type(e).__name__}: {e}')
  return wrapper


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict, Classify and GetModelMetadata."""

  def __init__(self, service: handlers.ModelService):
    self._service = service

  @_rpc
  def Predict(self, request, context):  # pylint: disable=invalid-name
    return self._service.predict(request)

  @_rpc
  def Classify(self, request, context):  # pylint: disable=invalid-name
    return self._service.classify(request)

  @_rpc
  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return self._service.get_model_metadata(request)

  @_rpc
  def Regress(self, request, context):  # pylint: disable=invalid-name
    raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                              'Regress is not supported by this server; use Predict')

  @_rpc
  def MultiInference(self, request, context):  # pylint: disable=invalid-name
    raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                              'MultiInference is not supported by this server; use Predict')


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
