"""Publishing a generator SavedModel as a versioned TF Hub module: plain functions over paths."""

import dataclasses
import os
import re
import tarfile
import tempfile
import time
from typing import Mapping, Optional, Tuple

import tensorflow as tf
from tfx.utils import io_utils

from ganpipe.components import versioning
from ganpipe.models import signatures

README_FILE = 'README.md'
ARCHIVE_SUFFIX = '.tar.gz'
# Dot-prefixed and non-numeric, so never taken for a version, by us or by a file server.
TEMP_PREFIX = '.publishing-'
# The metrics of the GeneratorEvaluator's metrics.json that the README reports.
METRIC_KEYS = ('frechet_classifier_distance', 'real_frechet_classifier_distance',
               'classifier_score', 'real_classifier_score', 'num_samples')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]*')


@dataclasses.dataclass(frozen=True)
class ModuleCard:
  """What the README says about a module beyond what its SavedModel tells."""
  publisher: str
  module_name: str
  dataset: str
  architecture: str
  license: str = 'Apache-2.0'
  # The README's Dataset section: what the data was and how much of it (`describe_dataset`).
  dataset_description: str = ''

  def __post_init__(self):
    for field in ('publisher', 'module_name'):
      value = getattr(self, field)
      if not _NAME.fullmatch(value):
        raise ValueError(f'{field} must be letters, digits, - and _ (it is a folder name and '
                         f'part of the module handle), got {value!r}')
    for field in ('dataset', 'architecture', 'license'):
      value = getattr(self, field)
      # Each is written into a one-line <!-- key: value --> metadata comment.
      if not value.strip() or '\n' in value or '-->' in value:
        raise ValueError(f'{field} must be one non-empty line without "-->", got {value!r}')

  @property
  def handle(self) -> str:
    return f'{self.publisher}/{self.module_name}'


@dataclasses.dataclass(frozen=True)
class GeneratorShapes:
  latent_dim: int
  image_shape: Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Publication:
  version: int
  path: str  # the module folder, `<hub_root>/<publisher>/<module_name>/<version>`
  archive_path: Optional[str]  # `<version>.tar.gz` beside it, when made


def read_shapes(saved_model_dir: str) -> GeneratorShapes:
  """The noise size and image shape of an exported generator, which must be reusable.

  Raises:
    ValueError: the SavedModel lacks the reusable SavedModel API or the serving signature, or
      its shapes are not those of a generator.
  """
  loaded = tf.saved_model.load(saved_model_dir)
  if not callable(loaded) or not getattr(loaded, 'trainable_variables', None):
    raise ValueError(f'{saved_model_dir} is not a reusable SavedModel (it needs __call__ and '
                     'trainable_variables); export it with '
                     'ganpipe.models.gan.training.export_generator')
  if signatures.GENERATE_FROM_NOISE not in loaded.signatures:
    raise ValueError(f'{saved_model_dir} has no {signatures.GENERATE_FROM_NOISE!r} signature')
  signature = loaded.signatures[signatures.GENERATE_FROM_NOISE]
  noise = signature.structured_input_signature[1].get('noise')
  images = signature.structured_outputs.get('images')
  if (noise is None or images is None or noise.shape.rank != 2 or images.shape.rank != 4 or
      not noise.shape[1:].is_fully_defined() or not images.shape[1:].is_fully_defined()):
    raise ValueError(f'{saved_model_dir}: expected noise [batch, latent] -> images '
                     f'[batch, h, w, c], got {noise} -> {images}')
  return GeneratorShapes(int(noise.shape[1]), tuple(int(d) for d in images.shape[1:]))


def module_root(hub_root: str, card: ModuleCard) -> str:
  """The folder holding every version of the module."""
  return os.path.join(hub_root, card.publisher, card.module_name)


def next_version(root: str) -> int:
  """One above every version published, or left as an archive by a crashed publish."""
  return max(versioning.versions(root, ARCHIVE_SUFFIX), default=0) + 1


def render_readme(card: ModuleCard, version: int, asset_path: str, shapes: GeneratorShapes,
                  metrics: Mapping[str, float], module_path: str) -> str:
  """The module's documentation in tfhub.dev's model Markdown format.

  Raises:
    ValueError: `metrics` lacks one of METRIC_KEYS.
  """
  missing = [key for key in METRIC_KEYS if key not in metrics]
  if missing:
    raise ValueError(f'the evaluation metrics lack {", ".join(missing)}')
  latent = shapes.latent_dim
  height, width, channels = shapes.image_shape
  baseline = metrics.get('baseline_frechet_classifier_distance')
  meaningful = metrics.get('distance_meaningful', True)
  baseline_line = ('' if baseline is None or not meaningful else
                   f'\nThe previously blessed generator\'s distance, measured in the same run, '
                   f'was {baseline:.2f}.\n')
  if meaningful:
    distances = (f"{metrics['frechet_classifier_distance']:.2f} | "
                 f"{metrics['real_frechet_classifier_distance']:.2f}")
    too_few = ''
  else:
    distances = 'not meaningful | not meaningful'
    too_few = (f" With {metrics['num_samples']} images per set, no more than the classifier's "
               f"{metrics['feature_dimensions']} feature dimensions, the distances' covariances "
               'are singular: the generator was judged by its classifier score alone.')
  most = signatures.MAX_GENERATED_IMAGES
  return f'''# Module {card.handle}/{version}

A {card.architecture} GAN generator trained on {card.dataset}: noise of size {latent} to \
{height}x{width}x{channels} images.

<!-- asset-path: {asset_path} -->
<!-- task: image-generator -->
<!-- fine-tunable: true -->
<!-- format: saved_model_2 -->
<!-- license: {card.license} -->
<!-- network-architecture: {card.architecture} -->
<!-- dataset: {card.dataset} -->

## Overview

An unconditional {card.architecture} GAN generator. It maps standard normal noise of shape
`[batch, {latent}]` (float32) to images of shape `[batch, {height}, {width}, {channels}]`, floats in
[0, 1], channels last. It uses batch normalisation: call it with `training=True` when
fine-tuning, and with the default `training=False` otherwise.

This is a TF2 reusable SavedModel: `__call__(noise, training=False)`, `variables`,
`trainable_variables` and `regularization_losses`. Its signatures are `serving_default`
(`noise` -> `images`) and `generate` (`num_images` int32, `seed` int64 -> `images`, and
`png_bytes`, the images as PNG bytes; a seed always gives the same images). `generate` makes at
most {most:,} images per call and refuses more: ask for more in several calls, each with its
own seed.

## Dataset

{card.dataset_description or f'Trained on {card.dataset}.'}

## Evaluation

Measured by the pipeline's GeneratorEvaluator on {metrics['num_samples']} generated images
against as many real evaluation images, in the feature space of a classifier trained in the
same run. The real images are drawn from each whole split with a fixed seed, each class in
proportion to its share. The reference column compares real training images with the same real
evaluation images, and gives the classifier score of the real evaluation images, which the
classifier did not train on.{too_few}

| Metric | This generator | Real data (reference) |
|---|---|---|
| Fréchet classifier distance (lower is better) | {distances} |
| Classifier score (higher is better) | {metrics['classifier_score']:.2f} | \
{metrics['real_classifier_score']:.2f} |
{baseline_line}
## Usage

```python
import tensorflow as tf
import tensorflow_hub as hub

generator = hub.load('{module_path}')
noise = tf.random.normal([16, {latent}])
images = generator(noise)  # [16, {height}, {width}, {channels}], floats in [0, 1]
seeded = generator.signatures['generate'](num_images=tf.constant(16),
                                          seed=tf.constant(7, tf.int64))['images']
```

In a Keras 2 model, fine-tunable (`hub.KerasLayer` needs Keras 2, `tf_keras`):

```python
import tf_keras as keras

noise = keras.Input([{latent}])
images = hub.KerasLayer('{module_path}', trainable=True)(noise)
model = keras.Model(noise, images)  # outputs [batch, {height}, {width}, {channels}]
```

## License

{card.license}
'''


def remove_stale_leftovers(root: str, now: Optional[float] = None) -> None:
  """Deletes what crashed publishes left: temporary folders, and archives of no version.

  Neither was ever a visible version. What a publish still running (another pipeline run's)
  has written is younger than `versioning.STALE_AFTER_SECONDS`, and is left alone.
  """
  if not tf.io.gfile.isdir(root):
    return
  now = time.time() if now is None else now
  versioning.remove_stale_temporaries(root, TEMP_PREFIX, now)
  names = {name.rstrip('/') for name in tf.io.gfile.listdir(root)}
  for name in names:
    path = os.path.join(root, name)
    if (name.endswith(ARCHIVE_SUFFIX) and name[:-len(ARCHIVE_SUFFIX)] not in names and
        now - tf.io.gfile.stat(path).mtime_nsec / 1e9 > versioning.STALE_AFTER_SECONDS):
      tf.io.gfile.remove(path)


def write_archive(module_dir: str, archive_path: str) -> None:
  """A gzipped tar of the module folder's contents, at the archive's root as tfhub.dev wants."""
  with tarfile.open(archive_path, 'w:gz') as archive:
    for name in sorted(os.listdir(module_dir)):
      archive.add(os.path.join(module_dir, name), arcname=name)


def publish(saved_model_dir: str, hub_root: str, card: ModuleCard,
            metrics: Mapping[str, float], make_archive: bool = True) -> Publication:
  """Publishes a generator as `<hub_root>/<publisher>/<module_name>/<version>/`.

  The module (the SavedModel and README.md) and its archive are assembled in a temporary folder
  beside the versions, then renamed into place: the archive first, then the module folder, whose
  appearance completes the version. A publish that fails leaves no version behind; a crashed one
  leaves leftovers that the next publish deletes. On object stores (gs://, s3://), where renames
  are copies, `saved_model.pb` is copied last instead.

  Args:
    saved_model_dir: a SavedModel written by `components.gan.training.export_generator`.
    hub_root: the root of the module tree.
    card: what the README says about the module.
    metrics: the GeneratorEvaluator's metrics (METRIC_KEYS, optionally
      `baseline_frechet_classifier_distance`).
    make_archive: also write `<version>.tar.gz` beside the module folder.
  Returns:
    Where the version was published.
  Raises:
    ValueError: the SavedModel is not a reusable generator, or `metrics` is incomplete.
    FileExistsError: the version appeared meanwhile (another publisher).
  """
  shapes = read_shapes(saved_model_dir)  # before touching hub_root: a bad model leaves nothing
  if '://' in hub_root:
    return _publish_to_object_store(saved_model_dir, hub_root, card, metrics, make_archive,
                                    shapes)
  root = os.path.abspath(module_root(hub_root, card))  # the README's snippets use it
  tf.io.gfile.makedirs(root)
  remove_stale_leftovers(root)
  version = next_version(root)
  final = os.path.join(root, str(version))
  archive = final + ARCHIVE_SUFFIX if make_archive else None
  readme = render_readme(card, version, archive or final, shapes, metrics, final)

  temporary = os.path.join(root, versioning.temporary_name(TEMP_PREFIX, version))
  os.makedirs(temporary)
  archive_placed = committed = False
  try:
    staged_module = os.path.join(temporary, str(version))
    io_utils.copy_dir(saved_model_dir, staged_module)
    with tf.io.gfile.GFile(os.path.join(staged_module, README_FILE), 'w') as f:
      f.write(readme)
    if archive:
      staged_archive = staged_module + ARCHIVE_SUFFIX
      write_archive(staged_module, staged_archive)
      if tf.io.gfile.exists(archive):
        raise FileExistsError(f'{archive} appeared while publishing version {version}')
      os.rename(staged_archive, archive)
      archive_placed = True
    if tf.io.gfile.exists(final):
      raise FileExistsError(f'{final} appeared while publishing version {version}')
    os.rename(staged_module, final)
    committed = True
  finally:
    if archive_placed and not committed:
      tf.io.gfile.remove(archive)
    tf.io.gfile.rmtree(temporary)
  return Publication(version, final, archive)


def _publish_to_object_store(saved_model_dir: str, hub_root: str, card: ModuleCard,
                             metrics: Mapping[str, float], make_archive: bool,
                             shapes) -> Publication:
  """`publish` for gs:// or s3:// roots (Kubeflow), where a folder cannot be renamed atomically.

  The version is assembled locally, then copied with `saved_model.pb` last, the file that
  loaders (hub.load, TF Serving) require: until it lands, the version is not a loadable module.
  """
  root = module_root(hub_root, card)
  tf.io.gfile.makedirs(root)
  version = next_version(root)
  final = f'{root.rstrip("/")}/{version}'
  archive = final + ARCHIVE_SUFFIX if make_archive else None
  readme = render_readme(card, version, archive or final, shapes, metrics, final)
  with tempfile.TemporaryDirectory() as local:
    staged_module = os.path.join(local, str(version))
    io_utils.copy_dir(saved_model_dir, staged_module)
    with open(os.path.join(staged_module, README_FILE), 'w', encoding='utf-8') as f:
      f.write(readme)
    if archive:
      write_archive(staged_module, staged_module + ARCHIVE_SUFFIX)
      tf.io.gfile.copy(staged_module + ARCHIVE_SUFFIX, archive)
    for directory, _, files in tf.io.gfile.walk(staged_module):
      target = f'{final}/{os.path.relpath(directory, staged_module)}'.replace('/./', '/')
      target = target[:-2] if target.endswith('/.') else target
      tf.io.gfile.makedirs(target)
      for name in files:
        if not (directory == staged_module and name == 'saved_model.pb'):
          tf.io.gfile.copy(os.path.join(directory, name), f'{target}/{name}')
    tf.io.gfile.copy(os.path.join(staged_module, 'saved_model.pb'), f'{final}/saved_model.pb')
  return Publication(version, final, archive)
