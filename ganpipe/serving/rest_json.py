"""TF Serving's REST JSON for tensors and examples, read and written as util/json_tensor.cc does.

Requests: "instances" rows or "inputs" columns become the signature's tensors, each JSON value
checked against the input's dtype; strings are UTF-8 text or {"b64": ...}. Answers: numbers as
rapidjson writes them (float32 in its shortest round-tripping form, `.0` on whole numbers),
strings as they are, except DT_STRING outputs whose alias ends in `_bytes`, which go as
{"b64": ...}. Every message is TF Serving's.
"""

import base64
import binascii
import json
import math
from typing import Any, Dict, List, Mapping, Tuple, Union

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2

from ganpipe.serving import errors
from ganpipe.serving import servable as servable_lib

_INT32 = (-2**31, 2**31 - 1)
_INT64 = (-2**63, 2**63 - 1)


# --- Describing JSON values, for the messages ---------------------------------------------------

def _type(value) -> str:
  """JsonTypeString."""
  if value is None:
    return 'Null'
  if value is True:
    return 'True'
  if value is False:
    return 'False'
  if isinstance(value, dict):
    return 'Object'
  if isinstance(value, list):
    return 'Array'
  if isinstance(value, str):
    return 'String'
  return 'Number'


def decimal(value: float, single: bool) -> str:
  """WriteDecimal: the shortest text (printf %g, else %.9g or %.17g) that reads back as the same
  float32 (`single`) or double, with `.0` on whole numbers; NaN and Infinity as they are."""
  if math.isnan(value):
    return 'NaN'
  if math.isinf(value):
    return '-Infinity' if value < 0 else 'Infinity'
  if single:
    value = float(np.float32(value))
  text = '%g' % value
  back = float(np.float32(float(text))) if single else float(text)
  if back != value:
    text = ('%.9g' if single else '%.17g') % value
  if '.' not in text and 'e' not in text:
    text += '.0'
  return text


def value_text(value) -> str:
  """JsonValueToString: rapidjson's pretty writer, 4-space indents, floats by WriteDecimal."""
  if isinstance(value, float):
    single = abs(value) <= 3.4028234e38 or not math.isfinite(value)
    return decimal(value, single)
  return json.dumps(value, indent=4, ensure_ascii=False)


def format_error(document, *parts) -> errors.ServingError:
  """FormatError: `JSON Value: <the value> <what is wrong>`."""
  return errors.invalid_argument(f'JSON Value: {value_text(document)} {"".join(parts)}')


# --- JSON -> tensors ------------------------------------------------------------------------------

def _is_b64(value) -> bool:
  """IsValBase64Object: an object whose one key is `b64`, a string."""
  return isinstance(value, dict) and len(value) == 1 and isinstance(value.get('b64'), str)


def _b64_decode(value) -> bytes:
  if not _is_b64(value):
    raise errors.invalid_argument(
        f'JSON Value: {value_text(value)} not formatted correctly for base64 data')
  try:
    return base64.b64decode(value['b64'], validate=True)
  except (binascii.Error, ValueError):
    raise errors.invalid_argument('Unable to base64 decode') from None


def _type_error(value, dtype: tf.dtypes.DType) -> errors.ServingError:
  return errors.invalid_argument(f'JSON Value: {value_text(value)} Type: {_type(value)} is not of '
                                 f'expected type: {servable_lib.type_string(dtype)}')


def _is_int(value, bounds: Tuple[int, int]) -> bool:
  return (isinstance(value, int) and not isinstance(value, bool) and
          bounds[0] <= value <= bounds[1])


def _scalar(value, dtype: tf.dtypes.DType):
  """AddValueToTensor: one JSON value as an element of `dtype`, if it is of the right JSON type."""
  if isinstance(value, dict):
    if dtype == tf.string:
      return _b64_decode(value)
    raise _type_error(value, dtype)
  if dtype in (tf.float32, tf.float64):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  elif dtype in (tf.int32, tf.int16, tf.int8, tf.uint8):
    ok = _is_int(value, _INT32)
  elif dtype == tf.int64:
    ok = _is_int(value, _INT64)
  elif dtype == tf.uint32:
    ok = _is_int(value, (0, 2**32 - 1))
  elif dtype == tf.uint64:
    ok = _is_int(value, (0, 2**64 - 1))
  elif dtype == tf.bool:
    ok = isinstance(value, bool)
  elif dtype == tf.string:
    ok = isinstance(value, str)
    if ok:
      return value.encode('utf-8')
  else:
    raise errors.ServingError(
        grpc.StatusCode.UNIMPLEMENTED,
        f'Conversion of JSON Value: {value_text(value)} to type: '
        f'{servable_lib.type_string(dtype)}')
  if not ok:
    raise _type_error(value, dtype)
  return value


def _shape(value) -> List[int]:
  """GetDenseTensorShape: each level's length, following the first element down."""
  shape = []
  while isinstance(value, list):
    shape.append(len(value))
    if not value:
      break
    value = value[0]
  return shape


def to_array(value, dtype: tf.dtypes.DType) -> np.ndarray:
  """FillTensorProto: a JSON value (nested lists of one shape) as a tensor of `dtype`.

  Raises:
    ServingError: a value of the wrong type, or a list out of shape, in TF Serving's words.
  """
  shape = _shape(value)
  flat: List[Any] = []

  def fill(item, level: int) -> None:
    if not isinstance(item, list):
      if level != len(shape):
        raise errors.invalid_argument(
            f'JSON Value: {value_text(item)} found at incorrect level: {level + 1} in the JSON '
            f'DOM. Expected at level: {len(shape)}')
      flat.append(_scalar(item, dtype))
      return
    if level >= len(shape):
      raise errors.invalid_argument(
          f'Encountered list at unexpected level: {level} expected < {len(shape)}')
    if len(item) != shape[level]:
      raise errors.invalid_argument(
          f'Encountered list at unexpected size: {len(item)} at level: {level} expected size: '
          f'{shape[level]}')
    for element in item:
      fill(element, level + 1)

  fill(value, 0)
  if dtype == tf.string:
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)
  return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def _status_text(error: errors.ServingError) -> str:
  """Status::ToString: `INVALID_ARGUMENT: <message>`."""
  return f'{error.code.name}: {error.message}'


def rows_to_inputs(document: Mapping[str, Any], instances,
                   dtypes: Mapping[str, tf.dtypes.DType]) -> Dict[str, np.ndarray]:
  """FillTensorMapFromInstancesList: "instances" batched into one tensor per input."""
  if not isinstance(instances, list):
    raise format_error(document, "Expecting 'instances' to be an list/array")
  if not instances:
    raise format_error(document, "No values in 'instances' array")
  if not isinstance(instances[0], dict) and len(dtypes) > 1:
    raise errors.invalid_argument('instances is a plain list, but expecting list of objects as '
                                  'multiple input tensors required as per tensorinfo_map')
  by_name = isinstance(instances[0], dict) and not _is_b64(instances[0])
  names = sorted(dtypes)
  columns: Dict[str, List[np.ndarray]] = {}
  for index, element in enumerate(instances):
    is_object = isinstance(element, dict) and not _is_b64(element)
    if by_name and not is_object:
      raise errors.invalid_argument(f'Expecting object but got list at item {index} of input '
                                    'list')
    if not by_name and is_object:
      raise errors.invalid_argument(f'Expecting value/list but got object at item {index} of '
                                    'input list')
    items = element.items() if by_name else [(names[0], element)]
    for name, item in items:
      try:
        if name not in dtypes:
          raise errors.invalid_argument(f'JSON object: does not have named input: {name}')
        array = to_array(item, dtypes[name])
        earlier = columns.get(name)
        if earlier:
          if earlier[0].size != array.size:
            raise errors.invalid_argument(
                f'Expecting tensor size: {earlier[0].size} but got: {array.size}')
          if earlier[0].shape != array.shape:
            raise errors.invalid_argument(
                f'Expecting shape {_shape_text(earlier[0].shape)} but got: '
                f'{_shape_text(array.shape)}')
        columns.setdefault(name, []).append(array)
      except errors.ServingError as error:
        key = f' key: {name}' if by_name else ''
        raise errors.invalid_argument(f"Failed to process element: {index}{key} of 'instances' "
                                      f'list. Error: {_status_text(error)}') from None
    if by_name and set(element) != set(names):
      raise errors.invalid_argument(
          f"Failed to process element: {index} of 'instances' list. JSON object: "
          f'{value_text(element)} keys must be equal to: {",".join(names)}')
  return {name: np.stack(arrays) for name, arrays in columns.items()}


def _shape_text(shape) -> str:
  return '[' + ','.join(str(size) for size in shape) + ']'


def columns_to_inputs(inputs, dtypes: Mapping[str, tf.dtypes.DType]) -> Dict[str, np.ndarray]:
  """FillTensorMapFromInputsMap: "inputs", one value for a lone input, else an object whose
  keys other than the signature's inputs are ignored."""
  if not isinstance(inputs, dict) or _is_b64(inputs):
    if len(dtypes) > 1:
      raise errors.invalid_argument('inputs is a plain value/list, but expecting an object as '
                                    'multiple input tensors required as per tensorinfo_map')
    (name,) = dtypes
    return {name: to_array(inputs, dtypes[name])}
  arrays = {}
  for name in sorted(dtypes):
    if name not in inputs:
      raise errors.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
    arrays[name] = to_array(inputs[name], dtypes[name])
  return arrays


# --- JSON -> tf.Example ---------------------------------------------------------------------------

_KIND_NAMES = {'bytes_list': 'bytes', 'float_list': 'float', 'int64_list': 'int64', None: 'UNKNOWN'}


def _add_to_feature(value, name: str, feature: feature_pb2.Feature) -> None:
  """AddValueToFeature: a JSON value appended to the feature's list of its kind."""
  if value is None or isinstance(value, list) or (isinstance(value, dict) and
                                                  not _is_b64(value)):
    raise errors.invalid_argument(f'Feature: {name} has element with unexpected JSON type: '
                                  f'{_type(value)}')
  if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, float)):
    kind = 'int64_list'
  elif isinstance(value, float):
    kind = 'float_list'
  else:
    kind = 'bytes_list'
  current = feature.WhichOneof('kind')
  if current not in (None, kind):
    raise errors.invalid_argument(f'Unexpected element type in feature: {name} expecting type: '
                                  f'{_KIND_NAMES[current]}')
  if kind == 'int64_list':
    if not isinstance(value, bool) and value > _INT64[1]:
      raise errors.invalid_argument(f'Feature: {name} has uint64_t element. Only int64_t is '
                                    'supported.')
    feature.int64_list.value.append(int(value))
  elif kind == 'float_list':
    feature.float_list.value.append(value)
  else:
    feature.bytes_list.value.append(_b64_decode(value) if isinstance(value, dict)
                                    else value.encode('utf-8'))


def fill_example(example: example_pb2.Example, features) -> None:
  """MakeExampleFromJsonObject: a JSON object of features as a tf.Example."""
  if not isinstance(features, dict):
    raise errors.invalid_argument(f'Example must be JSON object but got JSON {_type(features)}')
  for name, content in features.items():
    feature = feature_pb2.Feature()
    for value in content if isinstance(content, list) else [content]:
      _add_to_feature(value, name, feature)
    example.features.feature[name].CopyFrom(feature)


# --- tensors -> JSON ------------------------------------------------------------------------------

# What AddSingleValueAndAdvance writes; any other dtype fails, after the model ran.
_WRITABLE = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int16),
             np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int64), np.dtype(np.bool_),
             np.dtype(np.uint32), np.dtype(np.uint64)}


def tensor_json(value: np.ndarray, name: str, rows: bool = False) -> Union[str, List[str]]:
  """AddTensorValues: one output as JSON text (`rows`: each row's values, not the batch).

  Raises:
    ServingError: a dtype JSON has no form for.
  """
  if value.dtype.kind in ('O', 'S', 'U'):
    as_bytes = name.endswith('_bytes')

    def write(item):
      data = item if isinstance(item, bytes) else str(item).encode('utf-8')
      if as_bytes:
        return '{"b64": "' + base64.b64encode(data).decode('ascii') + '"}'
      # Written as they are, as rapidjson writes them: bytes that are not UTF-8 pass through.
      return json.dumps(data.decode('utf-8', 'surrogateescape'), ensure_ascii=False)
  elif value.dtype not in _WRITABLE:
    raise errors.invalid_argument('Failed to write JSON value for tensor type: '
                                  f'{servable_lib.type_string(tf.dtypes.as_dtype(value.dtype))}')
  elif value.dtype.kind == 'f':
    single = value.dtype == np.float32

    def write(item):
      return decimal(float(item), single)
  elif value.dtype == np.bool_:

    def write(item):
      return 'true' if item else 'false'
  else:

    def write(item):
      return str(int(item))

  def nested(array) -> str:
    if not isinstance(array, np.ndarray):  # an element of a row of strings or numbers
      return write(array)
    if array.ndim == 0:
      return write(array[()])
    return '[' + ', '.join(nested(part) for part in array) + ']'

  if rows:
    return [nested(row) for row in value]
  return nested(value)


def predictions_json(outputs: Mapping[str, np.ndarray]) -> str:
  """MakeRowFormatJsonFromTensors: {"predictions": [one value, or object, per row]}."""
  batch = None
  for name, value in outputs.items():
    if value.ndim == 0:
      raise errors.invalid_argument(f'Tensor name: {name} has no shape information ')
    if batch is not None and value.shape[0] != batch:
      raise errors.invalid_argument(f'Tensor name: {name} has inconsistent batch size: '
                                    f'{value.shape[0]} expecting: {batch}')
    batch = value.shape[0]
  columns = {name: tensor_json(value, name, rows=True) for name, value in outputs.items()}
  if len(columns) == 1:
    rows = next(iter(columns.values()))
  else:
    rows = ['{' + ', '.join(f'{json.dumps(name)}: {column[i]}'
                            for name, column in columns.items()) + '}'
            for i in range(batch)]
  return '{"predictions": [' + ', '.join(rows) + ']}'


def outputs_json(outputs: Mapping[str, np.ndarray]) -> str:
  """MakeColumnarFormatJsonFromTensors: {"outputs": value} or {"outputs": {alias: value}}."""
  if len(outputs) == 1:
    name, value = next(iter(outputs.items()))
    return '{"outputs": ' + tensor_json(value, name) + '}'
  return '{"outputs": {' + ', '.join(f'{json.dumps(name)}: {tensor_json(value, name)}'
                                     for name, value in outputs.items()) + '}}'


def results_json(values: List[Any]) -> str:
  """MakeJsonFromClassificationResult and ...RegressionResult: {"results": [...]}: per example
  its [label, score] pairs, or its value."""
  def write(item):
    if isinstance(item, list):
      return '[' + ', '.join(write(part) for part in item) + ']'
    if isinstance(item, str):
      return json.dumps(item, ensure_ascii=False)
    return decimal(item, True)
  return '{"results": ' + write(values) + '}'
