"""One loaded model version: its signatures, their contracts, and running them."""

import functools
import math
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl  # pylint: disable=no-name-in-module

from ganpipe.serving import errors

PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
REGRESS_METHOD = 'tensorflow/serving/regress'
DEFAULT_SIGNATURE = 'serving_default'
DEFAULT_TAGS = ('serve',)
# TF Serving hides the init op from clients; it is not a signature anyone can call.
_INIT_OP_SIGNATURE = '__saved_model_init_op'


class Signature:
  """A callable signature with the SignatureDef that states its contract."""

  def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef,
               session: tf.compat.v1.Session):
    self.name = name
    self.signature_def = signature_def
    self.method_name = signature_def.method_name or PREDICT_METHOD
    self._input_keys = sorted(signature_def.inputs)
    self._output_keys = sorted(signature_def.outputs)
    # One Session::RunCallable of the signature's feeds and fetches, prepared once. The public
    # `Session.make_callable` hands any feed list to `Session.run`, which parses feeds and fetches
    # again on every call: 0.11 against 0.045 ms for the classifier at batch 1, in Python, under
    # the GIL. `_make_callable_from_options` is the C++ Session::MakeCallable that Keras's graph
    # functions use; it leaves feeds unchecked, so `check_inputs` runs before every call.
    self._function = session._make_callable_from_options(  # pylint: disable=protected-access
        config_pb2.CallableOptions(
            feed=[signature_def.inputs[key].name for key in self._input_keys],
            fetch=[signature_def.outputs[key].name for key in self._output_keys]))
    self.inputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                   for key, info in signature_def.inputs.items()}
    self.outputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                    for key, info in signature_def.outputs.items()}

    def has_batch_dim(specs):
      return all(shape.rank is not None and shape.rank >= 1 and shape[0] is None
                 for _, shape in specs.values())
    # Whether requests can be concatenated along dimension 0 and the results split again.
    self.batchable = (bool(self.inputs) and has_batch_dim(self.inputs) and
                      has_batch_dim(self.outputs))
    # Per input: the dtype, the numpy dtype that is certainly it (None: none is), and the shape
    # as a tuple (None: any size) or None (any rank), for the per-request check; TensorShape's
    # and DType's own comparisons cost more than the rest of it.
    self._contracts = {key: (dtype, _numpy_dtype(dtype),
                             None if shape.rank is None else tuple(shape.as_list()))
                       for key, (dtype, shape) in self.inputs.items()}
    self._input_key_set = frozenset(self.inputs)

  def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
    """Raises INVALID_ARGUMENT, naming what is wrong, unless `inputs` fits the signature."""
    if inputs.keys() != self._input_key_set:
      sent, expected = set(inputs), set(self.inputs)
      parts = [f'input size does not match signature {self.name!r}: {len(sent)}!={len(expected)}']
      if sent - expected:
        parts.append(f'sent extra: {sorted(sent - expected)}')
      if expected - sent:
        parts.append(f'missing but required: {sorted(expected - sent)}')
      raise errors.invalid_argument('; '.join(parts))
    for key, value in inputs.items():
      dtype, numpy_dtype, dims = self._contracts[key]
      if numpy_dtype is None or value.dtype != numpy_dtype:
        got = _dtype_of(value)
        if got != dtype:
          raise errors.invalid_argument(
              f'input {key!r} of signature {self.name!r} expects dtype {dtype.name}, '
              f'but {got.name} was sent')
      if dims is not None and (len(dims) != value.ndim or any(
          want is not None and want != size for want, size in zip(dims, value.shape))):
        raise errors.invalid_argument(
            f'input {key!r} of signature {self.name!r} expects shape '
            f'{_shape_text(self.inputs[key][1])}, but shape {list(value.shape)} was sent')

  def __call__(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs the signature on checked inputs."""
    try:
      values = self._function(*[inputs[key] for key in self._input_keys])
    except tf.errors.InvalidArgumentError as e:
      raise errors.invalid_argument(f'signature {self.name!r} rejected the input: '
                                    f'{e.message.splitlines()[0]}') from e
    except tf.errors.OpError as e:
      raise errors.ServingError(grpc.StatusCode.INTERNAL,
                                f'signature {self.name!r} failed: {e.message.splitlines()[0]}') from e
    return dict(zip(self._output_keys, values))


class LoadedVersion:
  """A SavedModel version held in memory, ready to run.

  It is loaded as TF Serving loads it: the "serve" MetaGraph into a Session of its own, whose
  signatures run as Session callables. A callable runs a signature in far less time than an eager
  call of the same function: about 0.05 against 0.3 ms for the classifier at batch 1
  (benchmarks/serving_latency.py's two floors), the difference mostly Python.
  """

  def __init__(self, model_name: str, version: int, path: str,
               session_config: Optional[tf.compat.v1.ConfigProto] = None,
               tags: Sequence[str] = DEFAULT_TAGS):
    """`tags`: the MetaGraph to load is the one tagged with exactly these (--saved_model_tags)."""
    self.model_name = model_name
    self.version = version
    self.path = path
    loader = loader_impl.SavedModelLoader(path)
    meta_graph = _meta_graph(loader.saved_model, path, tags)
    self._session = tf.compat.v1.Session(graph=tf.Graph(), config=session_config)
    with self._session.graph.as_default():
      loader.load(self._session, list(tags))
    self.signature_defs = {name: signature_def
                           for name, signature_def in meta_graph.signature_def.items()}
    self.signatures = {}
    for name, signature_def in self.signature_defs.items():
      if name == _INIT_OP_SIGNATURE:
        continue
      try:
        self.signatures[name] = Signature(name, signature_def, self._session)
      except (KeyError, ValueError) as e:
        raise ValueError(f'signature {name!r} is declared but cannot be loaded: {e}') from e

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


def _meta_graph(saved_model, path: str, tags: Sequence[str]) -> meta_graph_pb2.MetaGraphDef:
  """The MetaGraph whose tag set is `tags`, as TF Serving's loader picks it."""
  for meta_graph in saved_model.meta_graphs:
    if set(meta_graph.meta_info_def.tags) == set(tags):
      return meta_graph
  found = [sorted(meta_graph.meta_info_def.tags) for meta_graph in saved_model.meta_graphs]
  raise ValueError(f'{path} has no MetaGraph tagged {sorted(set(tags))} (--saved_model_tags); '
                   f'its MetaGraphs are tagged {found}')


def _numpy_dtype(dtype: tf.dtypes.DType) -> Optional[np.dtype]:
  """The numpy dtype whose arrays are `dtype` (object for strings); None where none is."""
  if dtype == tf.string:
    return np.dtype(object)  # What requests decode to; bytes_ and str_ arrays go the long way.
  try:
    numpy_dtype = np.dtype(dtype.as_numpy_dtype)
    return numpy_dtype if tf.dtypes.as_dtype(numpy_dtype) == dtype else None
  except (KeyError, TypeError):  # resource, variant: no numpy dtype.
    return None


def _dtype_of(value: np.ndarray) -> tf.dtypes.DType:
  if value.dtype.kind in ('O', 'S', 'U'):
    return tf.string
  return tf.dtypes.as_dtype(value.dtype)


def _shape_text(shape: tf.TensorShape) -> str:
  if shape.rank is None:
    return 'of any rank'
  return '[' + ', '.join('-1' if d is None else str(d) for d in shape.as_list()) + ']'


# The dtypes with fast conversions: TensorProto dtype and the repeated field of single values.
_FAST_DTYPES = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, 'float_val'),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, 'double_val'),
    np.dtype(np.int32): (types_pb2.DT_INT32, 'int_val'),
    np.dtype(np.int64): (types_pb2.DT_INT64, 'int64_val'),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, 'int_val'),
}
_FAST_NUMPY_DTYPES = {enum: dtype for dtype, (enum, _) in _FAST_DTYPES.items()}


def to_ndarray(proto: tensor_pb2.TensorProto, key: str,
               max_bytes: Optional[int] = None) -> np.ndarray:
  """A request tensor as numpy; a malformed one is INVALID_ARGUMENT.

  A TensorProto may give one value for a whole shape, so a request of a few bytes can ask for
  gigabytes; one that would decode to more than `max_bytes` is RESOURCE_EXHAUSTED, before any of
  it is allocated.

  The common cases (strings, and numbers in tensor_content) skip tf.make_ndarray, whose Python
  costs more than the rest of a request's handling; the result is the same.
  """
  shape = [dim.size for dim in proto.tensor_shape.dim]
  if shape and min(shape) < 0:
    raise errors.invalid_argument(f'input {key!r} has a negative dimension in its shape {shape}')
  count = math.prod(shape)
  if max_bytes is not None:
    decoded = count * _item_bytes(proto.dtype)
    if decoded > max_bytes:
      raise errors.too_large(
          f'input {key!r} of shape {shape} would take {decoded} bytes decoded, over the limit of '
          f'{max_bytes} bytes (--max_message_size_bytes)')
  try:
    if proto.dtype == types_pb2.DT_STRING and len(proto.string_val) == count:
      return np.array(list(proto.string_val), dtype=object).reshape(shape)
    if proto.tensor_content and proto.dtype in _FAST_NUMPY_DTYPES:
      return np.frombuffer(proto.tensor_content,
                           dtype=_FAST_NUMPY_DTYPES[proto.dtype]).copy().reshape(shape)
    return tf.make_ndarray(proto)
  except (TypeError, ValueError) as e:
    raise errors.invalid_argument(f'input {key!r} is not a valid TensorProto: {e}') from e


@functools.lru_cache(maxsize=None)
def _item_bytes(dtype_enum: int) -> int:
  """Bytes per element once decoded; a string is a pointer in a numpy object array."""
  if dtype_enum == types_pb2.DT_STRING:
    return 8
  try:
    return max(1, tf.dtypes.as_dtype(dtype_enum).size)
  except TypeError:
    return 1  # Not a dtype at all: decoding names the problem.


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value: np.ndarray) -> None:
  """Writes tf.make_tensor_proto(value) into an empty `proto`, such as a response's output.

  The common dtypes are written directly, the same proto for a fraction of make_tensor_proto's
  Python: the dtype and shape from a cached encoding, then the values.

  As make_tensor_proto: numbers go in tensor_content when there is more than one, else in the
  dtype's repeated field; strings go in string_val.
  """
  fast = _FAST_DTYPES.get(value.dtype)
  if fast is None and not (value.dtype.kind == 'O' and
                           all(isinstance(item, bytes) for item in value.flat)):
    proto.CopyFrom(tf.make_tensor_proto(value))
    return
  dtype_enum = types_pb2.DT_STRING if fast is None else fast[0]
  proto.MergeFromString(_tensor_header(dtype_enum, value.shape))
  if fast is None:
    proto.string_val.extend(value.ravel().tolist())
  elif value.size > 1:
    proto.tensor_content = np.ascontiguousarray(value).tobytes()
  else:
    getattr(proto, fast[1]).extend(value.ravel().tolist())


@functools.lru_cache(maxsize=4096)
def _tensor_header(dtype_enum: int, shape: Tuple[int, ...]) -> bytes:
  """A TensorProto holding only `dtype_enum` and `shape`, encoded. A scalar's shape is present
  and empty, as make_tensor_proto's."""
  proto = tensor_pb2.TensorProto(dtype=dtype_enum)
  proto.tensor_shape.SetInParent()
  for size in shape:
    proto.tensor_shape.dim.add().size = size
  return proto.SerializeToString()
