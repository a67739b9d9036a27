"""Publishing a generator SavedModel as a versioned TF Hub module: plain functions over paths."""

import dataclasses
import os
import re
import tempfile
import time
import uuid
from typing import Mapping, Optional, Tuple

import tensorflow as tf

from ganpipe.components import versioning
from ganpipe.components.hub_publisher import module_files
from ganpipe.components.hub_publisher import tfhub_metadata
from ganpipe.models import signatures

# Beside each version folder `N/`: its archive and its documentation, where tfhub.dev's validator
# looks for them (a hub root is laid out as tfhub.dev's assets/docs tree).
ARCHIVE_SUFFIX = tfhub_metadata.ASSET_SUFFIX
DOC_SUFFIX = '.md'
# Dot-prefixed and non-numeric, so never taken for a version, by us or by a file server.
TEMP_PREFIX = '.publishing-'
# The metrics of the GeneratorEvaluator's metrics.json that the documentation reports.
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
    if not tfhub_metadata.PUBLISHER_ID.fullmatch(self.publisher):
      raise ValueError('publisher must be lower-case letters, digits and - (a tfhub.dev '
                       f'publisher id, and a folder name), got {self.publisher!r}')
    if not _NAME.fullmatch(self.module_name):
      raise ValueError('module_name must be letters, digits, - and _ (it is a folder name and '
                       f'part of the module handle), got {self.module_name!r}')
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
  doc_path: str  # `<version>.md` beside it, the module's documentation


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


def publisher_page_path(hub_root: str, card: ModuleCard) -> str:
  """`<hub_root>/<publisher>/<publisher>.md`, where tfhub.dev requires the publisher's page."""
  return f'{hub_root.rstrip("/")}/{card.publisher}/{card.publisher}{DOC_SUFFIX}'


def next_version(root: str) -> int:
  """One above every version published, or left as an archive or doc by a crashed publish."""
  return max(versioning.versions(root, ARCHIVE_SUFFIX) + versioning.versions(root, DOC_SUFFIX),
             default=0) + 1


def render_readme(card: ModuleCard, version: int, shapes: GeneratorShapes,
                  metrics: Mapping[str, float], asset_url: str = '') -> str:
  """The module's documentation, `<version>.md`, in tfhub.dev's model Markdown format.

  Its tags take only values in tfhub.dev's lists (`tfhub_metadata.metadata_tags`). The usage
  snippets load the module by its handle: the archive's URL when the hub root is served at
  `asset_url`, else the version folder relative to the hub root, never this machine's path.

  Raises:
    ValueError: `metrics` lacks one of METRIC_KEYS.
  """
  missing = [key for key in METRIC_KEYS if key not in metrics]
  if missing:
    raise ValueError(f'the evaluation metrics lack {", ".join(missing)}')
  asset = tfhub_metadata.asset_path(asset_url, card.publisher, card.module_name, version)
  tags = '\n'.join(f'<!-- {key}: {value} -->' for key, value in tfhub_metadata.metadata_tags(
      card.architecture, card.dataset, card.license, asset))
  handle = asset or f'{card.handle}/{version}'
  if asset:
    where = (f'Its handle is the URL of its archive, `{asset}`: `hub.load` downloads and '
             'unpacks it once, then loads it from its cache.')
  else:
    where = (f'This version was published without an `asset-path`, so the handle below is its '
             f'folder, `{handle}`, relative to the hub root it was published under. To give it '
             'one, serve the hub root over HTTP(S) and publish with `--publish.hub_asset_url '
             f'URL` (`ganpipe run` or `ganpipe publish`): its asset and handle are then '
             f'`URL/{handle}{ARCHIVE_SUFFIX}`.')
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

{tags}

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

{where}

```python
import tensorflow as tf
import tensorflow_hub as hub

generator = hub.load('{handle}')
noise = tf.random.normal([16, {latent}])
images = generator(noise)  # [16, {height}, {width}, {channels}], floats in [0, 1]
seeded = generator.signatures['generate'](num_images=tf.constant(16),
                                          seed=tf.constant(7, tf.int64))['images']
```

In a Keras 2 model, fine-tunable (`hub.KerasLayer` needs Keras 2, `tf_keras`):

```python
import tf_keras as keras

noise = keras.Input([{latent}])
images = hub.KerasLayer('{handle}', trainable=True)(noise)
model = keras.Model(noise, images)  # outputs [batch, {height}, {width}, {channels}]
```

## License

{card.license}
'''


def remove_stale_leftovers(root: str, now: Optional[float] = None) -> None:
  """Deletes what crashed publishes left: temporary folders, and archives and docs of no version.

  None was ever a visible version. What a publish still running (another pipeline run's) has
  written is younger than `versioning.STALE_AFTER_SECONDS`, and is left alone.
  """
  if not tf.io.gfile.isdir(root):
    return
  now = time.time() if now is None else now
  versioning.remove_stale_temporaries(root, TEMP_PREFIX, now)
  names = {name.rstrip('/') for name in tf.io.gfile.listdir(root)}
  for name in names:
    path = os.path.join(root, name)
    suffix = next((s for s in (ARCHIVE_SUFFIX, DOC_SUFFIX) if name.endswith(s)), None)
    if (suffix and name[:-len(suffix)].isdigit() and name[:-len(suffix)] not in names and
        now - tf.io.gfile.stat(path).mtime_nsec / 1e9 > versioning.STALE_AFTER_SECONDS):
      tf.io.gfile.remove(path)


def check_asset_url(asset_url: str, make_archive: bool) -> None:
  """Raises ValueError unless `asset_url` is '' or a URL the archive can be served from."""
  if asset_url:
    problem = tfhub_metadata.asset_url_problem(asset_url) or (
        None if make_archive else 'names where the archive is served, so it needs make_archive')
    if problem:
      raise ValueError(f'asset_url {problem}')


def write_publisher_page(hub_root: str, card: ModuleCard) -> str:
  """Writes `<publisher>/<publisher>.md` unless there is one (it may have been edited by hand)."""
  page = publisher_page_path(hub_root, card)
  if not tf.io.gfile.exists(page):
    tf.io.gfile.makedirs(page.rsplit('/', 1)[0])
    staged = f'{page}.{uuid.uuid4().hex[:8]}.tmp'
    with tf.io.gfile.GFile(staged, 'w') as f:
      f.write(tfhub_metadata.render_publisher_page(card.publisher))
    tf.io.gfile.rename(staged, page, overwrite=True)  # another publisher's is the same page
  return page


def publish(saved_model_dir: str, hub_root: str, card: ModuleCard,
            metrics: Mapping[str, float], make_archive: bool = True,
            asset_url: str = '') -> Publication:
  """Publishes a generator as `<hub_root>/<publisher>/<module_name>/<version>/`.

  Beside the version folder (the SavedModel's own files) go `<version>.tar.gz` (the same files)
  and `<version>.md` (its documentation), and `<hub_root>/<publisher>/<publisher>.md` is written
  when missing: the hub root is laid out as tfhub.dev's assets/docs tree. All are assembled in a
  temporary folder beside the versions, then renamed into place, the version folder last: its
  appearance completes the version. A publish that fails leaves no version behind; a crashed one
  leaves leftovers that the next publish deletes. On object stores (gs://, s3://), where renames
  are copies, `saved_model.pb` is copied last instead.

  Args:
    saved_model_dir: a SavedModel written by `components.gan.training.export_generator`.
    hub_root: the root of the module tree.
    card: what the documentation says about the module.
    metrics: the GeneratorEvaluator's metrics (METRIC_KEYS, optionally
      `baseline_frechet_classifier_distance`).
    make_archive: also write `<version>.tar.gz` beside the module folder.
    asset_url: the URL `hub_root` is served from; the documentation's `asset-path` is the
      archive's URL under it. '' leaves that tag out.
  Returns:
    Where the version was published.
  Raises:
    ValueError: the SavedModel is not a reusable generator, `metrics` is incomplete, or
      `asset_url` is not a usable URL or comes without the archive.
    FileExistsError: the version appeared meanwhile (another publisher).
  """
  check_asset_url(asset_url, make_archive)
  shapes = read_shapes(saved_model_dir)  # before touching hub_root: a bad model leaves nothing
  if '://' in hub_root:
    return _publish_to_object_store(saved_model_dir, hub_root, card, metrics, make_archive,
                                    shapes, asset_url)
  root = os.path.abspath(module_root(hub_root, card))
  tf.io.gfile.makedirs(root)
  write_publisher_page(os.path.abspath(hub_root), card)
  remove_stale_leftovers(root)
  version = next_version(root)
  final = os.path.join(root, str(version))
  archive = final + ARCHIVE_SUFFIX if make_archive else None
  text = render_readme(card, version, shapes, metrics, asset_url)

  temporary = os.path.join(root, versioning.temporary_name(TEMP_PREFIX, version))
  os.makedirs(temporary)
  placed, committed = [], False
  try:
    staged = os.path.join(temporary, str(version))
    module_files.copy_saved_model(saved_model_dir, staged)
    with tf.io.gfile.GFile(staged + DOC_SUFFIX, 'w') as f:
      f.write(text)
    renames = [(staged + DOC_SUFFIX, final + DOC_SUFFIX), (staged, final)]
    if archive:
      module_files.write_archive(staged, staged + ARCHIVE_SUFFIX)
      renames.insert(0, (staged + ARCHIVE_SUFFIX, archive))
    for source, target in renames:
      if tf.io.gfile.exists(target):
        raise FileExistsError(f'{target} appeared while publishing version {version}')
      os.rename(source, target)
      placed.append(target)
    committed = True
  finally:
    if not committed:
      for path in placed:  # the archive and the doc: the folder, renamed last, commits
        tf.io.gfile.remove(path)
    tf.io.gfile.rmtree(temporary)
  return Publication(version, final, archive, final + DOC_SUFFIX)


def _publish_to_object_store(saved_model_dir: str, hub_root: str, card: ModuleCard,
                             metrics: Mapping[str, float], make_archive: bool,
                             shapes: GeneratorShapes, asset_url: str) -> Publication:
  """`publish` for gs:// or s3:// roots (Kubeflow), where a folder cannot be renamed atomically.

  The version is assembled locally, then copied with `saved_model.pb` last, the file that
  loaders (hub.load, TF Serving) require: until it lands, the version is not a loadable module.
  """
  root = module_root(hub_root, card)
  tf.io.gfile.makedirs(root)
  write_publisher_page(hub_root, card)
  version = next_version(root)
  final = f'{root.rstrip("/")}/{version}'
  archive = final + ARCHIVE_SUFFIX if make_archive else None
  text = render_readme(card, version, shapes, metrics, asset_url)
  with tempfile.TemporaryDirectory() as local:
    staged = os.path.join(local, str(version))
    module_files.copy_saved_model(saved_model_dir, staged)
    if archive:
      module_files.write_archive(staged, staged + ARCHIVE_SUFFIX)
      tf.io.gfile.copy(staged + ARCHIVE_SUFFIX, archive)
    with tf.io.gfile.GFile(final + DOC_SUFFIX, 'w') as f:
      f.write(text)
    for directory, _, files in tf.io.gfile.walk(staged):
      target = f'{final}/{os.path.relpath(directory, staged)}'.replace('/./', '/')
      target = target[:-2] if target.endswith('/.') else target
      tf.io.gfile.makedirs(target)
      for name in files:
        if not (directory == staged and name == 'saved_model.pb'):
          tf.io.gfile.copy(os.path.join(directory, name), f'{target}/{name}')
    tf.io.gfile.copy(os.path.join(staged, 'saved_model.pb'), f'{final}/saved_model.pb')
  return Publication(version, final, archive, final + DOC_SUFFIX)
