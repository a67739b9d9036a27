"""One loaded model version: its signatures, their contracts, and running them."""

import os
import threading
from typing import Dict, Mapping, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl  # pylint: disable=no-name-in-module

from serving import errors

PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
DEFAULT_SIGNATURE = 'serving_default'
# TF Serving hides the init op from clients; it is not a signature anyone can call.
_INIT_OP_SIGNATURE = '__saved_model_init_op'


class Signature:
  """A callable signature with the SignatureDef that states its contract."""

  def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef, function):
    self.name = name
    self.signature_def = signature_def
    self.method_name = signature_def.method_name or PREDICT_METHOD
    self._function = function
    self.inputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                   for key, info in signature_def.inputs.items()}
    self.outputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                    for key, info in signature_def.outputs.items()}

  @property
  def batchable(self) -> bool:
    """Whether requests can be concatenated along dimension 0 and the results split again."""
    def has_batch_dim(specs):
      return all(shape.rank is not None and shape.rank >= 1 and shape[0] is None
                 for _, shape in specs.values())
    return bool(self.inputs) and has_batch_dim(self.inputs) and has_batch_dim(self.outputs)

  def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
    """Raises INVALID_ARGUMENT, naming what is wrong, unless `inputs` fits the signature."""
    sent, expected = set(inputs), set(self.inputs)
    if sent != expected:
      parts = [f'input size does not match signature {self.name!r}: {len(sent)}!={len(expected)}']
      if sent - expected:
        parts.append(f'sent extra: {sorted(sent - expected)}')
      if expected - sent:
        parts.append(f'missing but required: {sorted(expected - sent)}')
      raise errors.invalid_argument('; '.join(parts))
    for key, value in inputs.items():
      dtype, shape = self.inputs[key]
      got = _dtype_of(value)
      if got != dtype:
        raise errors.invalid_argument(
            f'input {key!r} of signature {self.name!r} expects dtype {dtype.name}, '
            f'but {got.name} was sent')
      if not shape.is_compatible_with(value.shape):
        raise errors.invalid_argument(
            f'input {key!r} of signature {self.name!r} expects shape {_shape_text(shape)}, '
            f'but shape {list(value.shape)} was sent')

  def __call__(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs the signature on checked inputs."""
    tensors = {key: tf.constant(value, dtype=self.inputs[key][0]) for key, value in inputs.items()}
    try:
      outputs = self._function(**tensors)
    except tf.errors.InvalidArgumentError as e:
      raise errors.invalid_argument(f'signature {self.name!r} rejected the input: '
                                    f'{e.message.splitlines()[0]}') from e
    except tf.errors.OpError as e:
      raise errors.ServingError(grpc.StatusCode.INTERNAL,
                                f'signature {self.name!r} failed: {e.message.splitlines()[0]}') from e
    return {key: value.numpy() for key, value in outputs.items()}


class LoadedVersion:
  """A SavedModel version held in memory, ready to run."""

  def __init__(self, model_name: str, version: int, path: str):
    self.model_name = model_name
    self.version = version
    self.path = path
    saved_model = loader_impl.parse_saved_model(path)
    meta_graph = _serving_meta_graph(saved_model, path)
    self._loaded = tf.saved_model.load(path, tags=['serve'])
    self.signature_defs = {name: signature_def
                           for name, signature_def in meta_graph.signature_def.items()}
    self.signatures = {}
    for name, signature_def in self.signature_defs.items():
      if name == _INIT_OP_SIGNATURE:
        continue
      function = self._loaded.signatures.get(name)
      if function is None:
        raise ValueError(f'signature {name!r} is declared but cannot be loaded')
      self.signatures[name] = Signature(name, signature_def, function)
    # Concurrent first calls would each trace; one warm call under a lock keeps load deterministic.
    self.lock = threading.Lock()

  def signature(self, name: Optional[str]) -> Signature:
    name = name or DEFAULT_SIGNATURE
    signature = self.signatures.get(name)
    if signature is None:
      raise errors.ServingError(
          grpc.StatusCode.FAILED_PRECONDITION,
          f'Serving signature key "{name}" not found in model {self.model_name!r} version '
          f'{self.version}; its signatures: {sorted(self.signatures)}')
    return signature

  @property
  def warmup_file(self) -> str:
    return os.path.join(self.path, 'assets.extra', 'tf_serving_warmup_requests')


def _serving_meta_graph(saved_model, path: str) -> meta_graph_pb2.MetaGraphDef:
  for meta_graph in saved_model.meta_graphs:
    if 'serve' in meta_graph.meta_info_def.tags:
      return meta_graph
  raise ValueError(f'{path} has no MetaGraph tagged "serve"')


def _dtype_of(value: np.ndarray) -> tf.dtypes.DType:
  if value.dtype.kind in ('O', 'S', 'U'):
    return tf.string
  return tf.dtypes.as_dtype(value.dtype)


def _shape_text(shape: tf.TensorShape) -> str:
  if shape.rank is None:
    return 'of any rank'
  return '[' + ', '.join('-1' if d is None else str(d) for d in shape.as_list()) + ']'


def to_ndarray(proto: tensor_pb2.TensorProto, key: str) -> np.ndarray:
  """A request tensor as numpy; a malformed one is INVALID_ARGUMENT."""
  try:
    return tf.make_ndarray(proto)
  except (TypeError, ValueError) as e:
    raise errors.invalid_argument(f'input {key!r} is not a valid TensorProto: {e}') from e


def to_tensor_proto(value: np.ndarray) -> tensor_pb2.TensorProto:
  return tf.make_tensor_proto(value)
