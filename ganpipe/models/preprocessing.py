"""The Transform preprocessing: decode encoded images, resize them and scale pixels to [0, 1].

The same graph runs in Transform and inside every serving signature, so a client sends encoded
PNG/JPEG/BMP/GIF bytes of any size and colour mode and gets the training-time preprocessing.
"""

from typing import Any, Dict, Tuple

import tensorflow as tf

from ganpipe.models import features

IMAGE_SHAPE = 'image_shape'  # custom_config key: [height, width, channels]


def decode_images(encoded: tf.Tensor, shape: Tuple[int, int, int]) -> tf.Tensor:
  """Decodes a [batch] string tensor of encoded images to [batch, height, width, channels].

  Pixels are float32 in [0, 1]. Images of another size are resized (bilinear, antialiased);
  colour images become grayscale and vice versa as `channels` asks.
  """
  height, width, channels = shape

  def decode_one(data):
    image = tf.io.decode_image(data, channels=channels, dtype=tf.float32,
                               expand_animations=False)
    image = tf.cond(
        tf.reduce_all(tf.shape(image)[:2] == [height, width]),
        lambda: image,
        lambda: tf.image.resize(image, [height, width], antialias=True))
    return tf.ensure_shape(image, [height, width, channels])

  return tf.map_fn(decode_one, encoded,
                   fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))


def _flatten_single(tensor: tf.Tensor) -> tf.Tensor:
  """A [batch, 1] (or sparse) single-value feature as a [batch] tensor."""
  if isinstance(tensor, tf.sparse.SparseTensor):
    tensor = tf.sparse.to_dense(tensor)
  return tf.reshape(tensor, [-1])


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
  """TFT preprocessing_fn. `custom_config['image_shape']` is [height, width, channels]."""
  shape = tuple(custom_config[IMAGE_SHAPE])
  outputs = {features.IMAGE_KEY: decode_images(_flatten_single(inputs[features.IMAGE_KEY]), shape)}
  if features.LABEL_KEY in inputs:
    outputs[features.LABEL_KEY] = _flatten_single(inputs[features.LABEL_KEY])
  return outputs
