"""TF Serving's REST JSON for tensors: "instances" rows, "inputs" columns, {"b64": ...} bytes.

As TF Serving's REST API encodes them (json_tensor.cc): numbers and nested lists, strings as UTF-8
text or {"b64": ...}, outputs whose alias ends in `_bytes` always base64, and tf.Example features
for :classify.
"""

import base64
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2

from ganpipe.serving import errors


def rows_to_inputs(instances, dtypes: Dict[str, tf.dtypes.DType]) -> Dict[str, np.ndarray]:
  if not isinstance(instances, list):
    raise errors.invalid_argument('"instances" must be a list')
  named = bool(instances) and all(isinstance(row, dict) and not _is_b64(row) for row in instances)
  if not named:
    if len(dtypes) != 1:
      raise errors.invalid_argument(
          f'the signature has {len(dtypes)} inputs {sorted(dtypes)}, so each instance must be '
          'an object naming them')
    (key,) = dtypes
    return {key: _to_array(instances, dtypes[key], key)}
  keys = set(instances[0])
  for row in instances:
    if set(row) != keys:
      raise errors.invalid_argument('every instance must have the same keys; '
                                    f'{sorted(row)} != {sorted(keys)}')
  return {key: _to_array([row[key] for row in instances], dtypes.get(key, tf.float32), key)
          for key in keys}


def columns_to_inputs(inputs, dtypes: Dict[str, tf.dtypes.DType]) -> Dict[str, np.ndarray]:
  if isinstance(inputs, dict) and not _is_b64(inputs):
    return {key: _to_array(value, dtypes.get(key, tf.float32), key)
            for key, value in inputs.items()}
  if len(dtypes) != 1:
    raise errors.invalid_argument(f'the signature has {len(dtypes)} inputs {sorted(dtypes)}, so '
                                  '"inputs" must be an object naming them')
  (key,) = dtypes
  return {key: _to_array(inputs, dtypes[key], key)}


def _is_b64(value) -> bool:
  return isinstance(value, dict) and set(value) == {'b64'}


def _decode_strings(value):
  if isinstance(value, list):
    return [_decode_strings(v) for v in value]
  if _is_b64(value):
    try:
      return base64.b64decode(value['b64'], validate=True)
    except (ValueError, TypeError) as e:
      raise errors.invalid_argument(f'invalid base64 in a "b64" value: {e}') from e
  if isinstance(value, str):
    return value.encode('utf-8')
  raise errors.invalid_argument(f'expected a string or {{"b64": ...}}, got {type(value).__name__}')


def _to_array(value, dtype: tf.dtypes.DType, key: str) -> np.ndarray:
  try:
    if dtype == tf.string:
      decoded = _decode_strings(value)
      array = np.array(decoded, dtype=object)
      if array.dtype != object or any(not isinstance(v, bytes) for v in array.reshape(-1)):
        raise ValueError('ragged or mixed values')
      return array
    if dtype == tf.bool:
      return np.array(value, dtype=bool)
    if any(isinstance(v, (str, dict)) for v in _flatten(value)):
      raise ValueError(f'{dtype.name} expected, but strings were sent')
    return np.array(value, dtype=dtype.as_numpy_dtype)
  except (ValueError, TypeError) as e:
    raise errors.invalid_argument(f'input {key!r}: cannot make a {dtype.name} tensor from the '
                                  f'JSON value: {e}') from e


def _flatten(value):
  if isinstance(value, list):
    for v in value:
      yield from _flatten(v)
  else:
    yield value


def to_json(value: np.ndarray, key: str) -> Any:
  if value.dtype == object or value.dtype.kind == 'S':
    # TF Serving base64-encodes outputs whose alias ends in `_bytes`; others that are not UTF-8
    # would not survive JSON, so they are encoded too.
    return _strings_to_json(value.tolist(), key.endswith('_bytes'))
  return value.tolist()


def _strings_to_json(value, binary: bool):
  if isinstance(value, list):
    return [_strings_to_json(v, binary) for v in value]
  if not binary:
    try:
      return value.decode('utf-8')
    except UnicodeDecodeError:
      pass
  return {'b64': base64.b64encode(value).decode('ascii')}


def fill_example(example: example_pb2.Example, features) -> None:
  """A JSON feature object as a tf.Example, typed the way TF Serving's REST API types it."""
  if not isinstance(features, dict):
    raise errors.invalid_argument(f'an example must be an object of features, got {features!r}')
  for name, value in features.items():
    values = value if isinstance(value, list) else [value]
    feature = example.features.feature[name]
    if all(isinstance(v, bool) or isinstance(v, int) for v in values):
      feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
      feature.float_list.value.extend(float(v) for v in values)
    else:
      feature.bytes_list.value.extend(_decode_strings(values))


def outputs_to_rows(outputs: Dict[str, np.ndarray]) -> Optional[list]:
  sizes = {key: (value.shape[0] if value.ndim else None) for key, value in outputs.items()}
  if len(set(sizes.values())) != 1 or None in sizes.values():
    raise errors.invalid_argument(
        f'the outputs have different batch sizes {sizes}, so the row format ("instances") '
        'cannot be used; send "inputs" instead')
  if len(outputs) == 1:
    key, value = next(iter(outputs.items()))
    return to_json(value, key)
  columns = {key: to_json(value, key) for key, value in outputs.items()}
  count = next(iter(sizes.values()))
  return [{key: column[i] for key, column in columns.items()} for i in range(count)]
