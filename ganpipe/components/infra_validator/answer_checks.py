"""The checks of a served model's answers: each on its own, then what they must agree on."""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from ganpipe.components.infra_validator import contract
from ganpipe.components.infra_validator import predict_requests
from ganpipe.models import signatures

SUM_TOLERANCE = 1e-3
# Float rounding may put a sigmoid or a rescaled tanh a hair outside [0, 1].
RANGE_TOLERANCE = 1e-6
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _output(outputs: Mapping[str, np.ndarray], alias: str, where: str) -> np.ndarray:
  if alias not in outputs:
    raise contract.InvalidAnswer(f'{where} returned no {alias!r} output (it returned: '
                                 f'{", ".join(sorted(outputs)) or "nothing"})')
  return outputs[alias]


def _check_array(value: np.ndarray, what: str, dtype: str,
                 shape: Sequence[Optional[int]]) -> None:
  """`dtype` is a numpy name or 'string'; `shape` holds None for any size."""
  got = 'string' if value.dtype == object or value.dtype.kind == 'S' else value.dtype.name
  if got != dtype:
    raise contract.InvalidAnswer(f'{what} are {got}, expected {dtype}')
  if value.ndim != len(shape) or any(want is not None and size != want
                                     for size, want in zip(value.shape, shape)):
    expected = ', '.join('?' if want is None else str(want) for want in shape)
    raise contract.InvalidAnswer(f'{what} have shape {list(value.shape)}, '
                                 f'expected [{expected}]')


def _check_unit_range(value: np.ndarray, what: str) -> None:
  if not np.all(np.isfinite(value)):
    raise contract.InvalidAnswer(f'{what} are not all finite ({np.sum(~np.isfinite(value))} '
                                 'NaN or infinite values)')
  if not value.size:
    return
  low, high = float(value.min()), float(value.max())
  if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
    raise contract.InvalidAnswer(f'{what} are outside [0, 1]: from {low:.4g} to {high:.4g}')


def check_classifier_answer(index: int, count: int, outputs: Mapping[str, np.ndarray]) -> None:
  """Raises InvalidAnswer unless `outputs` is a well-formed answer about `count` images."""
  where = f'request {index}'
  probabilities = _output(outputs, 'probabilities', where)
  class_ids = _output(outputs, 'class_ids', where)
  class_names = _output(outputs, 'class_names', where)
  _check_array(probabilities, f'probabilities of {where}', 'float32', (count, None))
  _check_array(class_ids, f'class_ids of {where}', 'int64', (count,))
  _check_array(class_names, f'class_names of {where}', 'string', (count,))
  if probabilities.shape[1] < 1:
    raise contract.InvalidAnswer(f'probabilities of {where} have no classes')
  _check_unit_range(probabilities, f'probabilities of {where}')
  sums = probabilities.sum(axis=1, dtype=np.float64)
  worst = int(np.argmax(np.abs(sums - 1.0)))
  if abs(sums[worst] - 1.0) > SUM_TOLERANCE:
    raise contract.InvalidAnswer(f'probabilities of {where} sum to {sums[worst]:.4g} '
                                 f'(image {worst}), not 1')
  for row, class_id in enumerate(class_ids):
    # Compared by value, so that ties between classes do not fail a correct argmax.
    if not (0 <= class_id < probabilities.shape[1] and
            probabilities[row, class_id] == probabilities[row].max()):
      raise contract.InvalidAnswer(f'class_ids of {where} are not the argmax of its '
                                   f'probabilities: image {row} has class {class_id}, argmax '
                                   f'{int(np.argmax(probabilities[row]))}')


def check_images(images: np.ndarray, count: int, what: str) -> None:
  """Raises InvalidAnswer unless `images` are `count` float32 [h, w, c] images in [0, 1]."""
  _check_array(images, what, 'float32', (count, None, None, None))
  _check_unit_range(images, what)


def check_pngs(png: np.ndarray, images: np.ndarray, where: str) -> None:
  """Raises InvalidAnswer unless `png` holds one PNG per image, of the image's shape."""
  _check_array(png, f'png_bytes of {where}', 'string', (len(images),))
  for number, data in enumerate(png):
    if not bytes(data).startswith(PNG_SIGNATURE):
      raise contract.InvalidAnswer(f'png_bytes {number} of {where} is not a PNG')
    try:
      decoded = tf.io.decode_image(bytes(data), expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
      raise contract.InvalidAnswer(f'png_bytes {number} of {where} does not decode: '
                                   f'{error.message.splitlines()[0]}') from error
    if tuple(decoded.shape) != images.shape[1:]:
      raise contract.InvalidAnswer(f'png_bytes {number} of {where} has shape '
                                   f'{list(decoded.shape)}, the image\'s is '
                                   f'{list(images.shape[1:])}')


def check_answers(kind: str, requests: Sequence[predict_pb2.PredictRequest],
                  answers: Sequence[Mapping[str, np.ndarray]]) -> None:
  """Checks every answer, then what the answers must agree on across requests.

  Raises:
    contract.InvalidAnswer: the first answer, or pair of answers, that breaks the contract.
  """
  image_shapes = {}
  for index, (request, outputs) in enumerate(zip(requests, answers)):
    count = predict_requests.batch_size(request)
    signature = request.model_spec.signature_name
    if kind == signatures.CLASSIFIER:
      check_classifier_answer(index, count, outputs)
      continue
    where = f'request {index}'
    images = _output(outputs, 'images', where)
    check_images(images, count, f'images of {where}')
    image_shapes.setdefault(images.shape[1:], signature)
    if signature == signatures.GENERATE:
      check_pngs(_output(outputs, signatures.PNG_OUTPUT, where), images, where)
  if kind == signatures.CLASSIFIER:
    _check_signatures_agree(requests, answers)
  else:
    if len(image_shapes) > 1:
      shapes = ', '.join(f'{list(shape)} from {signature!r}'
                         for shape, signature in image_shapes.items())
      raise contract.InvalidAnswer(f'the images have different shapes: {shapes}')
    _check_repeat_is_identical(requests, answers)


def _check_signatures_agree(requests, answers) -> None:
  """`serving_default` and `serving_examples` must classify the same images alike."""
  by_signature: Dict[str, Dict[int, Tuple[int, np.ndarray]]] = {}
  for index, (request, outputs) in enumerate(zip(requests, answers)):
    by_signature.setdefault(request.model_spec.signature_name, {})[
        predict_requests.batch_size(request)] = (index, outputs['class_ids'])
  for count, (index, class_ids) in by_signature.get(signatures.CLASSIFY_IMAGES, {}).items():
    other = by_signature.get(signatures.CLASSIFY_EXAMPLES, {}).get(count)
    if other is not None and not np.array_equal(class_ids, other[1]):
      raise contract.InvalidAnswer(f'requests {index} ({signatures.CLASSIFY_IMAGES!r}) and '
                                   f'{other[0]} ({signatures.CLASSIFY_EXAMPLES!r}) gave the same '
                                   f'images different class_ids: {class_ids.tolist()} and '
                                   f'{other[1].tolist()}')


def _check_repeat_is_identical(requests, answers) -> None:
  first = {}
  for index, request in enumerate(requests):
    if request.model_spec.signature_name != signatures.GENERATE:
      continue
    key = request.SerializeToString(deterministic=True)
    if key in first:
      earlier = first[key]
      if not np.array_equal(answers[earlier]['images'], answers[index]['images']):
        seed = int(tf.make_ndarray(request.inputs['seed']))
        raise contract.InvalidAnswer(f'requests {earlier} and {index} ({signatures.GENERATE!r} '
                                     f'with seed {seed}) gave different images for the same '
                                     'seed')
    else:
      first[key] = index
