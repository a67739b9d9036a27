"""Querying the served classifier and generator through their serving contracts.

Each query is one Predict call of a `serving.client.ServingClient`, so it works against any TF
Serving compatible server; the signatures and their inputs and outputs are the models' own
(`models.signatures`).
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ganpipe.models import signatures
from ganpipe.serving import client as client_lib


@dataclasses.dataclass(frozen=True)
class Prediction:
  """The classifier's answer for one image."""
  class_id: int
  class_name: str
  probability: float
  probabilities: Tuple[float, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class GeneratedImages:
  """The generator's answer: `images` [n, h, w, c] float32 in [0, 1], one encoded PNG per image."""
  images: np.ndarray
  png: Tuple[bytes, ...]


def classify_images(client: client_lib.ServingClient, model: str, images: Sequence[bytes], *,
                    version: Optional[int] = None,
                    version_label: Optional[str] = None) -> List[Prediction]:
  """Classifies encoded images with the classifier's `serving_default` signature.

  The signature takes `images` ([batch] string, PNG or JPEG bytes) and returns
  `probabilities` [batch, K] float32, `class_ids` [batch] int64, `class_names` [batch] string.

  Args:
    client: a client of the server.
    model: the classifier's name on the server.
    images: encoded images, sent in one request.
    version: a specific version; None (and no label) is the latest.
    version_label: a version label, instead of `version`.

  Returns:
    One prediction per image, in order.

  Raises:
    ServingError: the call failed, or the answer does not match the signature.
    ValueError: no images, or both `version` and `version_label`.
  """
  if not images:
    raise ValueError('no images to classify')
  outputs = client.predict(model, {'images': np.array(list(images), dtype=object)},
                           signature=signatures.CLASSIFY_IMAGES, version=version,
                           version_label=version_label)
  where = client_lib.describe(model, version, version_label, signatures.CLASSIFY_IMAGES)
  probabilities = _output(outputs, 'probabilities', where, client.target)
  class_ids = _output(outputs, 'class_ids', where, client.target)
  class_names = _output(outputs, 'class_names', where, client.target)
  count = len(images)
  if (probabilities.ndim != 2 or probabilities.shape[0] != count or
      class_ids.shape != (count,) or class_names.shape != (count,)):
    raise client_lib.ServingError(
        f'{where} at {client.target} returned probabilities {list(probabilities.shape)}, '
        f'class_ids {list(class_ids.shape)}, class_names {list(class_names.shape)} for '
        f'{count} images; expected [{count}, K], [{count}], [{count}]')
  predictions = []
  for row, class_id, name in zip(probabilities, class_ids, class_names):
    class_id = int(class_id)
    probability = row[class_id] if 0 <= class_id < len(row) else row.max()
    predictions.append(Prediction(
        class_id=class_id, class_name=_text(name), probability=float(probability),
        probabilities=tuple(float(p) for p in row)))
  return predictions


def generate(client: client_lib.ServingClient, model: str, num_images: int, seed: int, *,
             version: Optional[int] = None,
             version_label: Optional[str] = None) -> GeneratedImages:
  """Generates images with the generator's `generate` signature, in as many calls as it takes.

  The signature takes `num_images` (int32 scalar, at most signatures.MAX_GENERATED_IMAGES) and
  `seed` (int64 scalar) and returns `images` [n, h, w, c] float32 in [0, 1] and `png_bytes` [n]
  string. A larger request is split into calls of MAX_GENERATED_IMAGES images, the last one
  smaller: call k (from 0) asks for images k * MAX_GENERATED_IMAGES onwards with seed
  `seed + k`. So a request's first 1,024 images are those of a request for 1,024 with the same
  seed, and any image can be made again alone. Without a version or label, every call asks for
  the version that was the latest at the first, so that all images come from one model.

  Args:
    client: a client of the server.
    model: the generator's name on the server.
    num_images: how many images to generate.
    seed: the noise seed; the same seed and model version give the same images.
    version: a specific version; None (and no label) is the latest.
    version_label: a version label, instead of `version`.

  Returns:
    The images.

  Raises:
    ServingError: a call failed, or an answer does not match the signature.
    ValueError: `num_images` is not positive, the seeds of its calls would pass 2**63 - 1, or
      both `version` and `version_label`.
  """
  if num_images < 1:
    raise ValueError(f'num_images must be positive, got {num_images}')
  per_call = signatures.MAX_GENERATED_IMAGES
  calls = -(-num_images // per_call)
  if seed + calls - 1 >= 2**63:
    raise ValueError(f'{num_images} images take {calls} calls, with seeds {seed} to '
                     f'{seed + calls - 1}, past the largest int64 seed; pass a smaller seed')
  if calls > 1 and version is None and version_label is None:
    version = _latest_available(client, model)
  parts = [_generate_once(client, model, min(per_call, num_images - call * per_call),
                          seed + call, version, version_label) for call in range(calls)]
  if len(parts) == 1:
    return parts[0]
  shapes = {part.images.shape[1:] for part in parts}
  if len(shapes) > 1:
    raise client_lib.ServingError(
        f'{model!r} at {client.target} answered images of shapes {sorted(shapes)} in one request')
  return GeneratedImages(images=np.concatenate([part.images for part in parts]),
                         png=tuple(png for part in parts for png in part.png))


def _latest_available(client: client_lib.ServingClient, model: str) -> Optional[int]:
  available = [status['version'] for status in client.model_status(model)
               if status['state'] == 'AVAILABLE']
  return max(available) if available else None


def _generate_once(client: client_lib.ServingClient, model: str, num_images: int, seed: int,
                   version: Optional[int], version_label: Optional[str]) -> GeneratedImages:
  outputs = client.predict(model, {'num_images': np.int32(num_images), 'seed': np.int64(seed)},
                           signature=signatures.GENERATE, version=version,
                           version_label=version_label)
  where = client_lib.describe(model, version, version_label, signatures.GENERATE)
  images = _output(outputs, 'images', where, client.target)
  png = _output(outputs, signatures.PNG_OUTPUT, where, client.target)
  if images.ndim != 4 or images.shape[0] != num_images or png.shape != (num_images,):
    raise client_lib.ServingError(
        f'{where} at {client.target} returned images {list(images.shape)} and png_bytes '
        f'{list(png.shape)} for {num_images} images; expected [{num_images}, h, w, c] and '
        f'[{num_images}]')
  return GeneratedImages(images=images.astype(np.float32, copy=False),
                         png=tuple(bytes(p) for p in png))


def _output(outputs: Dict[str, np.ndarray], alias: str, where: str, target: str) -> np.ndarray:
  if alias not in outputs:
    raise client_lib.ServingError(
        f'{where} at {target} returned no {alias!r} output (it returned: '
        f'{", ".join(sorted(outputs)) or "nothing"}); is it the right model?')
  return outputs[alias]


def _text(value) -> str:
  return value.decode('utf-8', errors='replace') if isinstance(value, bytes) else str(value)
