"""One loaded model version: its signatures, their contracts, and running them."""

import copy
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
    self._session = session
    self._function = self._callable(self._output_keys)
    self.inputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                   for key, info in signature_def.inputs.items()}
    self.outputs = {key: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                    for key, info in signature_def.outputs.items()}
    # Whether requests can be concatenated along dimension 0 and the results split again.
    self.batchable = (bool(self.inputs) and _has_batch_dim(self.inputs) and
                      _has_batch_dim(self.outputs))
    # Per input, in feed order: the dtype, and the numpy dtype that is certainly it (None: none
    # is), for the per-request check; DType's own comparisons cost more than the rest of it.
    self._contracts = {key: (dtype, _numpy_dtype(dtype))
                       for key, (dtype, _) in self.inputs.items()}
    self._feed_index = {key: index for index, key in enumerate(self._input_keys)}
    self._input_key_set = frozenset(self.inputs)
    self._subsets: Dict[Tuple[str, ...], 'Signature'] = {}

  def _callable(self, output_keys: Sequence[str]):
    return self._session._make_callable_from_options(  # pylint: disable=protected-access
        config_pb2.CallableOptions(
            feed=[self.signature_def.inputs[key].name for key in self._input_keys],
            fetch=[self.signature_def.outputs[key].name for key in output_keys]))

  def fetching(self, output_keys: Sequence[str]) -> 'Signature':
    """This signature with only `output_keys` fetched, so only the ops they need run: a
    Predict's output filter, as PreProcessPrediction (servables/tensorflow/predict_util.cc)
    makes it the Session's fetch list. Each subset is prepared once; the batcher queues each
    apart, as TF Serving's BatchingSession keeps a queue per feeds-and-fetches signature."""
    keys = tuple(sorted(output_keys))
    if keys == tuple(self._output_keys):
      return self
    subset = self._subsets.get(keys)
    if subset is None:
      subset = copy.copy(self)
      subset._output_keys = list(keys)  # pylint: disable=protected-access
      subset._function = self._callable(keys)  # pylint: disable=protected-access
      subset.outputs = {key: self.outputs[key] for key in keys}
      subset.batchable = (bool(self.inputs) and _has_batch_dim(self.inputs) and
                          _has_batch_dim(subset.outputs))
      subset = self._subsets.setdefault(keys, subset)
    return subset

  def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
    """Raises INVALID_ARGUMENT, as TF Serving words it, unless `inputs` fits the signature.

    As TF Serving: the inputs must be the signature's (VerifyRequestInputsSize in
    servables/tensorflow/predict_util.cc, then GetInputValues in TensorFlow's
    cc/saved_model/util.cc), and of its dtypes (the Session's own check of its feeds). Shapes are
    not checked: the signature's ops take what they can.
    """
    if inputs.keys() != self._input_key_set:
      sent, expected = sorted(inputs), sorted(self.inputs)
      if len(sent) != len(expected):
        raise errors.invalid_argument(
            f'input size does not match signature: {len(sent)}!={len(expected)} '
            f'len({{{",".join(sent)}}}) != len({{{",".join(expected)}}}). Sent extra: '
            f'{{{",".join(sorted(set(sent) - set(expected)))}}}. Missing but required: '
            f'{{{",".join(sorted(set(expected) - set(sent)))}}}.')
      missing = next(key for key in expected if key not in inputs)
      raise errors.invalid_argument(
          f'Signature input alias: {missing}(feed name: '
          f'{self.signature_def.inputs[missing].name}) not found in request and no default '
          f'value provided. Inputs expected to be in the request {{{",".join(sent)}}}, or '
          'default input alias set: ')
    for key, value in inputs.items():
      dtype, numpy_dtype = self._contracts[key]
      if numpy_dtype is None or value.dtype != numpy_dtype:
        got = _dtype_of(value)
        if got != dtype:
          # FunctionCallFrame::SetArgs's words, which TF Serving returns.
          raise errors.invalid_argument(
              f'Expects arg[{self._feed_index[key]}] to be {type_string(dtype)} but '
              f'{type_string(got)} is provided')

  def __call__(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs the signature on checked inputs."""
    try:
      values = self._function(*[inputs[key] for key in self._input_keys])
    except tf.errors.OpError as e:
      # As TF Serving: the Session's status, its code and its whole message.
      raise errors.ServingError(_GRPC_CODES.get(e.error_code, grpc.StatusCode.UNKNOWN),
                                e.message) from e
    return dict(zip(self._output_keys, values))


def _has_batch_dim(specs) -> bool:
  return all(shape.rank is not None and shape.rank >= 1 and shape[0] is None
             for _, shape in specs.values())


class LoadError(Exception):
  """A version that cannot load, with the status code TensorFlow's loader gives the failure."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


def load_error(error: BaseException) -> LoadError:
  """Any exception of a load attempt, as the status TF Serving reports for the version."""
  if isinstance(error, LoadError):
    return error
  if isinstance(error, tf.errors.OpError):
    return LoadError(_GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), error.message)
  return LoadError(grpc.StatusCode.UNKNOWN, ' '.join(str(error).split()) or type(error).__name__)


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
    """`tags`: the MetaGraph to load is the one tagged with exactly these (--saved_model_tags).

    Raises:
      LoadError: the version cannot load, with TensorFlow's status code for why.
    """
    self.model_name = model_name
    self.version = version
    self.path = path
    try:
      loader = loader_impl.SavedModelLoader(path)
    except OSError as e:
      # ReadBinaryProto (TensorFlow's core/platform/env.cc), which TF Serving's loader calls.
      raise LoadError(grpc.StatusCode.DATA_LOSS,
                      f"Can't parse {os.path.join(path, 'saved_model.pb')} as binary proto") from e
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
      # RunPredict (servables/tensorflow/predict_util.cc).
      raise errors.ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                f'Serving signature key "{name}" not found.')
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
  # NOT_FOUND, as FindMetaGraphDef (TensorFlow's cc/saved_model/loader.cc); the tag sets it has
  # are ganpipe's addition.
  raise LoadError(grpc.StatusCode.NOT_FOUND,
                  f'{path} has no MetaGraph tagged {sorted(set(tags))} (--saved_model_tags); its '
                  f'MetaGraphs are tagged {found}')


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


def type_string(dtype: tf.dtypes.DType) -> str:
  """TensorFlow's DataTypeString: DT_FLOAT is `float`, DT_DOUBLE `double`, DT_STRING `string`."""
  return types_pb2.DataType.Name(dtype.as_datatype_enum)[len('DT_'):].lower()


# TensorFlow's error codes are the canonical ones, as gRPC's.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


# The dtypes of requests decoded without tf.make_ndarray: TensorProto dtype -> numpy dtype.
_FAST_NUMPY_DTYPES = {types_pb2.DT_FLOAT: np.dtype(np.float32),
                      types_pb2.DT_DOUBLE: np.dtype(np.float64),
                      types_pb2.DT_INT32: np.dtype(np.int32),
                      types_pb2.DT_INT64: np.dtype(np.int64),
                      types_pb2.DT_UINT8: np.dtype(np.uint8)}
# Where Tensor::AsProtoField (TensorFlow's core/framework/tensor.cc) puts each dtype's values:
# numpy dtype -> (TensorProto dtype, repeated field, the numpy view the field holds). Half and
# bfloat16 hold their bit patterns, complex numbers their real and imaginary parts in turn.
_PROTO_FIELDS = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, 'float_val', None),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, 'double_val', None),
    np.dtype(np.int32): (types_pb2.DT_INT32, 'int_val', None),
    np.dtype(np.int16): (types_pb2.DT_INT16, 'int_val', None),
    np.dtype(np.int8): (types_pb2.DT_INT8, 'int_val', None),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, 'int_val', None),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, 'int_val', None),
    np.dtype(np.int64): (types_pb2.DT_INT64, 'int64_val', None),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, 'uint32_val', None),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, 'uint64_val', None),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, 'bool_val', None),
    np.dtype(np.float16): (types_pb2.DT_HALF, 'half_val', np.uint16),
    np.dtype(tf.bfloat16.as_numpy_dtype): (types_pb2.DT_BFLOAT16, 'half_val', np.uint16),
    np.dtype(np.complex64): (types_pb2.DT_COMPLEX64, 'scomplex_val', np.float32),
    np.dtype(np.complex128): (types_pb2.DT_COMPLEX128, 'dcomplex_val', np.float64),
}


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


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value: np.ndarray,
                      as_tensor_content: bool = False) -> None:
  """Writes `value` into an empty `proto`, such as a response's output, as TF Serving does.

  By default its values go in the dtype's repeated field, as Tensor::AsProtoField writes them,
  which TF Serving's Predict uses unless --enable_serialization_as_tensor_content
  (PostProcessPredictionResult in servables/tensorflow/predict_util.cc). With
  `as_tensor_content`, as Tensor::AsProtoTensorContent: the raw bytes, strings as TensorFlow's
  string list encoding (every length as a varint32, then every string).
  """
  if value.dtype.kind in ('O', 'S', 'U'):
    strings = [item if isinstance(item, bytes) else str(item).encode('utf-8')
               for item in value.ravel().tolist()]
    proto.MergeFromString(_tensor_header(types_pb2.DT_STRING, value.shape))
    if as_tensor_content:
      proto.tensor_content = _encode_string_list(strings)
    else:
      proto.string_val.extend(strings)
    return
  found = _PROTO_FIELDS.get(value.dtype)
  if found is None:
    raise errors.ServingError(grpc.StatusCode.INTERNAL,
                              f'cannot serialize an output of dtype {value.dtype}')
  dtype_enum, field, view = found
  proto.MergeFromString(_tensor_header(dtype_enum, value.shape))
  if as_tensor_content:
    proto.tensor_content = np.ascontiguousarray(value).tobytes()
  elif value.size:
    flat = np.ascontiguousarray(value).reshape(-1)
    getattr(proto, field).extend((flat if view is None else flat.view(view)).tolist())


def _encode_string_list(strings: Sequence[bytes]) -> bytes:
  """TensorFlow's port::EncodeStringList: each length as a varint32, then the bytes."""
  encoded = bytearray()
  for item in strings:
    length = len(item)
    while length >= 0x80:
      encoded.append((length & 0x7F) | 0x80)
      length >>= 7
    encoded.append(length)
  for item in strings:
    encoded += item
  return bytes(encoded)


@functools.lru_cache(maxsize=4096)
def _tensor_header(dtype_enum: int, shape: Tuple[int, ...]) -> bytes:
  """A TensorProto holding only `dtype_enum` and `shape`, encoded. A scalar's shape is present
  and empty, as make_tensor_proto's."""
  proto = tensor_pb2.TensorProto(dtype=dtype_enum)
  proto.tensor_shape.SetInParent()
  for size in shape:
    proto.tensor_shape.dim.add().size = size
  return proto.SerializeToString()
