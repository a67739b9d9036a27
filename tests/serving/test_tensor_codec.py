"""Request and response tensors convert exactly as TensorFlow's own conversions do."""

import numpy as np
import pytest
import tensorflow as tf

from serving import errors
from serving import servable

ARRAYS = [
    np.random.default_rng(0).random((2, 10)).astype(np.float32),
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array(7, dtype=np.int32),
    np.zeros((0, 3), np.float32),
    np.array([[1, 2]], dtype=np.uint8),
    np.array([0.5, 1.5], dtype=np.float64),
    np.array([True, False]),
    np.array([[b'a', b'bc']], dtype=object),
    np.array(b'scalar', dtype=object),
]


@pytest.mark.parametrize('value', ARRAYS, ids=lambda v: f'{v.dtype}{list(v.shape)}')
def test_responses_decode_as_tensorflow_encodes_them(value):
  proto = servable.to_tensor_proto(value)
  assert proto.dtype == tf.make_tensor_proto(value).dtype
  decoded = tf.make_ndarray(proto)
  assert decoded.dtype == value.dtype and decoded.shape == value.shape
  np.testing.assert_array_equal(decoded, value)


@pytest.mark.parametrize('value', ARRAYS, ids=lambda v: f'{v.dtype}{list(v.shape)}')
def test_requests_decode_as_tensorflow_decodes_them(value):
  proto = tf.make_tensor_proto(value)
  decoded = servable.to_ndarray(proto, 'x')
  expected = tf.make_ndarray(proto)
  assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
  np.testing.assert_array_equal(decoded, expected)


def test_a_string_tensor_with_one_value_for_many_elements_is_broadcast_as_tensorflow_does():
  proto = tf.make_tensor_proto([b'x'], dtype=tf.string)
  proto.tensor_shape.dim[0].size = 3
  np.testing.assert_array_equal(servable.to_ndarray(proto, 'x'), tf.make_ndarray(proto))


def test_a_malformed_tensor_is_invalid_argument():
  proto = tf.make_tensor_proto(np.zeros((2, 2), np.float32))
  proto.tensor_content = b'\x00' * 3
  with pytest.raises(errors.ServingError, match="input 'x' is not a valid TensorProto"):
    servable.to_ndarray(proto, 'x')
