"""An in-process fake TF Serving gRPC server: a 3-class classifier and a 4x5 generator."""

import dataclasses
import io
import threading
import time
from concurrent import futures
from typing import Any, List, Optional, Tuple

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

CLASS_NAMES = ('zero', 'one', 'two')
IMAGE_SHAPE = (4, 5, 1)
# Model name -> versions the fake serves; 'broken' has a version that failed to load.
VERSIONS = {'classifier': (1, 2), 'generator': (1,), 'broken': ()}
LABELS = {'stable': 1}


def fake_images(num_images: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).random((num_images, *IMAGE_SHAPE), dtype=np.float32)


def class_id(image: bytes) -> int:
  return len(image) % len(CLASS_NAMES)


@dataclasses.dataclass
class FakeServer:
  """What the fake does before answering, and what it was asked."""
  target: str = ''
  unavailable_times: int = 0
  sleep_seconds: float = 0.0
  error: Optional[Tuple[grpc.StatusCode, str]] = None
  drop_output: Optional[str] = None
  bad_images: Tuple[bytes, ...] = ()  # The classifier rejects any request holding one of these.
  calls: List[Tuple[str, Any]] = dataclasses.field(default_factory=list)
  deadlines: List[Optional[float]] = dataclasses.field(default_factory=list)  # seconds left
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def start_call(self, method: str, request, context) -> int:
    """Records the call, fails as told, and returns the version the request resolves to."""
    with self.lock:
      self.calls.append((method, request))
      self.deadlines.append(context.time_remaining())
      unavailable = self.unavailable_times > 0
      self.unavailable_times -= unavailable
    if unavailable:
      context.abort(grpc.StatusCode.UNAVAILABLE, 'fake server: still warming up')
    time.sleep(self.sleep_seconds)
    if self.error:
      context.abort(*self.error)
    spec = request.model_spec
    if spec.name not in VERSIONS:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f'Servable not found for request: Latest({spec.name})')
    versions = VERSIONS[spec.name]
    if spec.HasField('version'):
      if spec.version.value not in versions:
        context.abort(grpc.StatusCode.NOT_FOUND,
                      f'Servable not found for request: Specific({spec.name}, '
                      f'{spec.version.value})')
      return spec.version.value
    if spec.version_label:
      if spec.version_label not in LABELS:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f'Unrecognized servable version label: {spec.version_label}')
      return LABELS[spec.version_label]
    if method != 'GetModelStatus' and not versions:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f'Servable not found for request: Latest({spec.name})')
    return max(versions, default=0)

  def requests(self, method: str) -> list:
    return [request for name, request in self.calls if name == method]


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict for a 3-class classifier and a 4x5 grayscale generator; GetModelMetadata."""

  def __init__(self, fake: FakeServer):
    self._fake = fake

  def Predict(self, request, context):
    version = self._fake.start_call('Predict', request, context)
    name, signature = request.model_spec.name, request.model_spec.signature_name
    response = predict_pb2.PredictResponse()
    response.model_spec.name = name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature
    if (name, signature) == ('classifier', 'serving_default'):
      images = tf.make_ndarray(request.inputs['images'])
      if any(image in self._fake.bad_images for image in images):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "signature 'serving_default' rejected the input: Unknown image file "
                      'format. One of JPEG, PNG, GIF, BMP required.')
      class_ids = np.array([class_id(image) for image in images], dtype=np.int64)
      probabilities = np.full((len(images), len(CLASS_NAMES)), 0.1, dtype=np.float32)
      probabilities[np.arange(len(images)), class_ids] = 0.8
      outputs = {'probabilities': probabilities, 'class_ids': class_ids,
                 'class_names': np.array([CLASS_NAMES[i].encode() for i in class_ids],
                                         dtype=object)}
    elif (name, signature) == ('generator', 'generate'):
      if (request.inputs['num_images'].dtype != tf.int32.as_datatype_enum or
          request.inputs['seed'].dtype != tf.int64.as_datatype_enum):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'expects int32 num_images, int64 seed')
      images = fake_images(int(tf.make_ndarray(request.inputs['num_images'])),
                            int(tf.make_ndarray(request.inputs['seed'])))
      outputs = {'images': images, 'png_bytes': np.array([png(image) for image in images],
                                                   dtype=object)}
    else:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f'Serving signature name: "{signature}" not found in signature def')
    for alias, value in outputs.items():
      if alias != self._fake.drop_output and (
          not request.output_filter or alias in request.output_filter):
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return response

  def GetModelMetadata(self, request, context):
    version = self._fake.start_call('GetModelMetadata', request, context)
    if list(request.metadata_field) != ['signature_def']:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f'Metadata field {list(request.metadata_field)} is not supported')
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    init = signatures.signature_def['__saved_model_init_op']
    init.outputs['__saved_model_init_op'].name = 'NoOp'
    init.outputs['__saved_model_init_op'].tensor_shape.unknown_rank = True
    if request.model_spec.name == 'classifier':
      signature = signatures.signature_def['serving_default']
      signature.method_name = 'tensorflow/serving/predict'
      _tensor(signature.inputs['images'], tf.string, [None])
      _tensor(signature.outputs['probabilities'], tf.float32, [None, len(CLASS_NAMES)])
      _tensor(signature.outputs['class_ids'], tf.int64, [None])
      _tensor(signature.outputs['class_names'], tf.string, [None])
    else:
      signature = signatures.signature_def['generate']
      signature.method_name = 'tensorflow/serving/predict'
      _tensor(signature.inputs['num_images'], tf.int32, [])
      _tensor(signature.inputs['seed'], tf.int64, [])
      _tensor(signature.outputs['images'], tf.float32, [None, *IMAGE_SHAPE])
      _tensor(signature.outputs['png_bytes'], tf.string, [None])
    response.metadata['signature_def'].Pack(signatures)
    return response


class FakeModelService(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus: the latest version AVAILABLE, older ones END; 'broken' failed to load."""

  def __init__(self, fake: FakeServer):
    self._fake = fake

  def GetModelStatus(self, request, context):
    self._fake.start_call('GetModelStatus', request, context)
    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus
    versions = VERSIONS[request.model_spec.name]
    for version in versions:
      status = response.model_version_status.add(version=version)
      status.state = states.AVAILABLE if version == max(versions) else states.END
    if not versions:
      status = response.model_version_status.add(version=3, state=states.END)
      status.status.error_code = grpc.StatusCode.NOT_FOUND.value[0]
      status.status.error_message = 'Could not find SavedModel .pb or .pbtxt'
    return response


def _tensor(info: meta_graph_pb2.TensorInfo, dtype: tf.DType, shape: List[Optional[int]]):
  info.dtype = dtype.as_datatype_enum
  info.tensor_shape.CopyFrom(tf.TensorShape(shape).as_proto())


def png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.round(image[..., 0] * 255).astype(np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def start(fake: FakeServer, credentials: Optional[grpc.ServerCredentials] = None,
          host: str = '127.0.0.1') -> grpc.Server:
  """Serves `fake` on a free port of `host`, which it records in `fake.target`."""
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      FakePredictionService(fake), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(FakeModelService(fake), server)
  if credentials is None:
    port = server.add_insecure_port(f'{host}:0')
  else:
    port = server.add_secure_port(f'{host}:0', credentials)
  server.start()
  fake.target = f'{host}:{port}'
  return server


@pytest.fixture
def fake():
  """A fake TF Serving gRPC server in this process, for the client and the CLI's commands."""
  server_state = FakeServer()
  server = start(server_state)
  yield server_state
  server.stop(grace=None)
