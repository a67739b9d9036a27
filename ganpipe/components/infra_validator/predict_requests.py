"""The requests sent to a model under validation, which become its warmup records when blessed."""

import glob
import os
from typing import List, Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from ganpipe.models import features
from ganpipe.models import signatures

EVAL_SPLIT = 'eval'


def read_eval_examples(examples_uri: str, count: int) -> List[bytes]:
  """The first `count` serialized tf.Examples of ImageExampleGen's eval split.

  Raises:
    FileNotFoundError: the split has no files, or no examples.
  """
  pattern = os.path.join(examples_uri, f'Split-{EVAL_SPLIT}', '*.gz')
  files = sorted(glob.glob(pattern))
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(count)
  examples = [record.numpy() for record in dataset] if files else []
  if not examples:
    raise FileNotFoundError(f'no examples in {pattern}')
  return examples


def make_request(model_name: str, signature: str,
                 inputs: Mapping[str, np.ndarray]) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  for alias, value in inputs.items():
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
  return request


def classifier_requests(model_name: str, examples: Sequence[bytes]
                        ) -> List[predict_pb2.PredictRequest]:
  """For k = 1..len(examples), the first k images to `serving_default` and `serving_examples`.

  Every batch size up to the count is checked, and then warmed up by the warmup file.
  """
  pngs = [tf.train.Example.FromString(example).features.feature[features.IMAGE_KEY]
          .bytes_list.value[0] for example in examples]
  requests = []
  for count in range(1, len(examples) + 1):
    requests.append(make_request(model_name, signatures.CLASSIFY_IMAGES,
                                 {'images': np.array(pngs[:count], dtype=object)}))
    requests.append(make_request(model_name, signatures.CLASSIFY_EXAMPLES,
                                 {'examples': np.array(examples[:count], dtype=object)}))
  return requests


def generator_requests(model_name: str, latent_dim: int, count: int
                       ) -> List[predict_pb2.PredictRequest]:
  """For k = 1..count, k noise vectors to `serving_default` and k images from `generate`.

  The first `generate` request is repeated last: the same seed must give the same images.
  """
  rng = np.random.default_rng(0)
  requests = []
  for size in range(1, count + 1):
    noise = rng.standard_normal((size, latent_dim), dtype=np.float32)
    requests.append(make_request(model_name, signatures.GENERATE_FROM_NOISE, {'noise': noise}))
    requests.append(make_request(model_name, signatures.GENERATE,
                                 {'num_images': np.int32(size), 'seed': np.int64(size - 1)}))
  requests.append(requests[1])
  return requests


def batch_size(request: predict_pb2.PredictRequest) -> int:
  """How many items a request asks for: its batch dimension, or `num_images`."""
  if 'num_images' in request.inputs:
    return int(tf.make_ndarray(request.inputs['num_images']))
  return request.inputs[next(iter(sorted(request.inputs)))].tensor_shape.dim[0].size


def prediction_logs(requests: Sequence[predict_pb2.PredictRequest]
                    ) -> List[prediction_log_pb2.PredictionLog]:
  """The requests as TF Serving's warmup records."""
  return [prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request)) for request in requests]
