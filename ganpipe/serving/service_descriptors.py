"""TF Serving's service descriptors, for server reflection.

tensorflow-serving-api 2.16 ships `prediction_service_pb2` and `model_service_pb2` generated for
protobuf 3, and they fail to import under protobuf 4's upb runtime (`has_options` is read-only).
The `_grpc` stubs work, but reflection needs the services in the descriptor pool, so their
FileDescriptorProtos are declared here, method for method as in TF Serving's .proto files.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from tensorflow_serving.apis import classification_pb2  # noqa: F401  (registers the messages)
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: F401
from tensorflow_serving.apis import get_model_status_pb2  # noqa: F401
from tensorflow_serving.apis import inference_pb2  # noqa: F401
from tensorflow_serving.apis import model_management_pb2  # noqa: F401
from tensorflow_serving.apis import predict_pb2  # noqa: F401
from tensorflow_serving.apis import regression_pb2  # noqa: F401

PREDICTION_SERVICE = 'tensorflow.serving.PredictionService'
MODEL_SERVICE = 'tensorflow.serving.ModelService'

_FILES = {
    'tensorflow_serving/apis/prediction_service.proto': (
        'PredictionService',
        ['tensorflow_serving/apis/classification.proto',
         'tensorflow_serving/apis/get_model_metadata.proto',
         'tensorflow_serving/apis/inference.proto',
         'tensorflow_serving/apis/predict.proto',
         'tensorflow_serving/apis/regression.proto'],
        [('Classify', 'ClassificationRequest', 'ClassificationResponse'),
         ('Regress', 'RegressionRequest', 'RegressionResponse'),
         ('Predict', 'PredictRequest', 'PredictResponse'),
         ('MultiInference', 'MultiInferenceRequest', 'MultiInferenceResponse'),
         ('GetModelMetadata', 'GetModelMetadataRequest', 'GetModelMetadataResponse')]),
    'tensorflow_serving/apis/model_service.proto': (
        'ModelService',
        ['tensorflow_serving/apis/get_model_status.proto',
         'tensorflow_serving/apis/model_management.proto'],
        [('GetModelStatus', 'GetModelStatusRequest', 'GetModelStatusResponse'),
         ('HandleReloadConfigRequest', 'ReloadConfigRequest', 'ReloadConfigResponse')]),
}


def register() -> None:
  """Adds both services to the default descriptor pool, once."""
  pool = descriptor_pool.Default()
  for file_name, (service, dependencies, methods) in _FILES.items():
    try:
      pool.FindFileByName(file_name)
      continue
    except KeyError:
      pass
    proto = descriptor_pb2.FileDescriptorProto(name=file_name, package='tensorflow.serving',
                                               syntax='proto3', dependency=dependencies)
    service_proto = proto.service.add(name=service)
    for name, request, response in methods:
      service_proto.method.add(name=name, input_type=f'.tensorflow.serving.{request}',
                               output_type=f'.tensorflow.serving.{response}')
    pool.Add(proto)
