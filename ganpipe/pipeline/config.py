"""Typed, validated configuration for the whole pipeline (frozen dataclasses)."""

import dataclasses
import re
from typing import Dict, Optional, Tuple

# Datasets and the image shape each one has natively; None: images come in any size and are
# converted to the configured shape (FILE_DEFAULT_SHAPES gives the default).
DATASET_SHAPES: Dict[str, Optional[Tuple[int, int, int]]] = {
    'digits': (8, 8, 1),
    'fashion-mnist': (28, 28, 1),
    'folder': None,
    'idx': None,
    'npz': None,
    'tfrecord': None,
}
FILE_DEFAULT_SHAPES = {'folder': (32, 32, 3), 'idx': (28, 28, 1), 'npz': (28, 28, 1),
                       'tfrecord': (28, 28, 1)}
# Datasets read from --data.data_dir, which they require.
NEEDS_DATA_DIR = ('folder', 'idx', 'npz', 'tfrecord')
WRONG_SIZE_POLICIES = ('resize', 'reject')
IMAGE_FORMATS = ('png', 'jpeg', 'jpg', 'bmp', 'gif', 'tiff', 'webp')
ACTIVATIONS = ('relu', 'tanh')
OPTIMIZERS = ('adam', 'sgd', 'rmsprop')
RUNNERS = ('beam', 'local')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
DIRECT_RUNNING_MODES = ('multi_processing', 'multi_threading', 'in_memory')
# The DirectRunner's engine for batch pipelines, named outright: Beam 2.72's DirectRunner first
# tries Prism, a Go binary it downloads from GitHub at run time. Prism ignores the direct_* options
# below, and without network each attempt fails and leaves an empty /tmp/beam-temp* directory.
BEAM_LOCAL_RUNNER = 'FnApiRunner'
GAN_ARCHITECTURES = ('auto', 'dense', 'dcgan')


class ConfigError(ValueError):
  """An invalid configuration value. The message names the option and the fix."""

  def __init__(self, option: str, problem: str, fix: str):
    self.option = option
    super().__init__(f'{option}: {problem}. Fix: {fix}.')


def check(condition: bool, option: str, problem: str, fix: str) -> None:
  """Raises ConfigError naming `option`, what is wrong and how to fix it, unless `condition`."""
  if not condition:
    raise ConfigError(option, problem, fix)


def _check_positive(value: Optional[int], option: str, allow_none: bool = False) -> None:
  if value is None and allow_none:
    return
  check(isinstance(value, int) and not isinstance(value, bool) and value > 0, option,
         f'must be a positive integer, got {value!r}', f'pass --{option} with a value >= 1')


def _check_fraction(value: float, option: str) -> None:
  check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0, option,
         f'must be within [0, 1], got {value!r}', f'pass --{option} with a value from 0 to 1')


@dataclasses.dataclass(frozen=True)
class PathsConfig:
  """Where the pipeline writes. Local paths or object-store URIs (gs://, s3://)."""
  pipeline_root: str = 'outputs/pipeline'
  metadata_path: str = 'outputs/metadata/metadata.sqlite'
  serving_root: str = 'outputs/serving'
  # TF Hub modules: <hub_root>/<publisher>/<module>/<version>/
  hub_root: str = 'outputs/hub'

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      check(isinstance(value, str) and bool(value.strip()), f'paths.{field.name}',
             'must be a non-empty path', f'pass --paths.{field.name} PATH')


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The dataset, how its images are normalised, the split and the bad-record limit."""
  dataset: str = 'digits'
  # The source folder: a class-per-folder tree, IDX pairs, .npz files or TFRecords. For
  # fashion-mnist it defaults to /usr/share/datasets/fashion-mnist.
  data_dir: Optional[str] = None
  # A curated schema.pbtxt to validate against; None infers one from the train split.
  schema_path: Optional[str] = None
  # Target (height, width) and channel count; None means the dataset's native shape.
  image_size: Optional[Tuple[int, int]] = None
  channels: Optional[int] = None
  # Images of another size are resized, or rejected.
  on_wrong_size: str = 'resize'
  # Accepted encodings of image files.
  formats: Tuple[str, ...] = ('png', 'jpeg', 'bmp', 'gif')
  # Larger input images are rejected (too_large) from their header, without being decoded.
  max_image_pixels: int = 8192 * 8192
  # Ingestion fails when more than this fraction of the records is rejected.
  max_bad_fraction: float = 0.01
  # Hash buckets of the deterministic split when the source gives no splits of its own.
  train_buckets: int = 4
  eval_buckets: int = 1

  def __post_init__(self):
    check(self.dataset in DATASET_SHAPES, 'data.dataset',
           f'unknown dataset {self.dataset!r}',
           f'pass --data.dataset with one of {", ".join(DATASET_SHAPES)}')
    if self.dataset in NEEDS_DATA_DIR:
      check(bool(self.data_dir), 'data.data_dir',
             f'the {self.dataset} dataset needs a data folder',
             f'pass --data.data_dir with the folder holding the {self.dataset} data')
    if self.image_size is not None:
      check(len(self.image_size) == 2 and all(
          isinstance(v, int) and v > 0 for v in self.image_size), 'data.image_size',
             f'must be two positive integers, got {self.image_size!r}',
             'pass --data.image_size HEIGHT,WIDTH')
    if self.channels is not None:
      check(self.channels in (1, 3), 'data.channels', f'must be 1 or 3, got {self.channels!r}',
             'pass --data.channels 1 (grayscale) or 3 (RGB)')
    check(self.on_wrong_size in WRONG_SIZE_POLICIES, 'data.on_wrong_size',
           f'unknown policy {self.on_wrong_size!r}',
           f'pass --data.on_wrong_size with one of {", ".join(WRONG_SIZE_POLICIES)}')
    check(len(self.formats) >= 1 and all(f in IMAGE_FORMATS for f in self.formats),
           'data.formats', f'unknown image formats in {self.formats!r}',
           f'pass --data.formats with some of {", ".join(IMAGE_FORMATS)}')
    height, width, _ = self.image_shape
    check(isinstance(self.max_image_pixels, int) and self.max_image_pixels >= height * width,
           'data.max_image_pixels',
           f'{self.max_image_pixels!r} is less than the {height}x{width} output images',
           f'pass --data.max_image_pixels of at least {height * width}')
    _check_fraction(self.max_bad_fraction, 'data.max_bad_fraction')
    _check_positive(self.train_buckets, 'data.train_buckets')
    _check_positive(self.eval_buckets, 'data.eval_buckets')

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    """(height, width, channels) of every image after ingestion."""
    native = DATASET_SHAPES[self.dataset] or FILE_DEFAULT_SHAPES[self.dataset]
    height, width = self.image_size or native[:2]
    return (height, width, self.channels or native[2])


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """The MLP classifier and how it is trained."""
  hidden_units: Tuple[int, ...] = (256, 128)
  activation: str = 'relu'
  # Dropout rate after each hidden layer; 0 disables it.
  dropout: float = 0.3
  # Standard deviation of Gaussian noise added to the [0, 1] pixels while training; 0 disables.
  # Off by default. At 0.3 (100 epochs) Fashion-MNIST eval accuracy was 0.877-0.886, under its
  # 0.89 goal; without, 0.893-0.896 (digits 0.975-0.983). The noisy classifier is also less sure
  # of generated images than of real ones: the same generators scored 70-75% of the real
  # classifier score on Fashion-MNIST (digits 77%) with it, 80-82% (digits 84%) without.
  input_noise: float = 0.0
  optimizer: str = 'adam'
  learning_rate: float = 1e-3
  batch_size: int = 32
  # Train for `epochs` full passes, or for exactly `train_steps` batches when it is set.
  epochs: int = 100
  train_steps: Optional[int] = None
  # None evaluates on the whole eval split.
  eval_steps: Optional[int] = None

  def __post_init__(self):
    check(len(self.hidden_units) >= 1, 'classifier.hidden_units',
           'needs at least one hidden layer', 'pass --classifier.hidden_units 256,128')
    for units in self.hidden_units:
      _check_positive(units, 'classifier.hidden_units')
    check(self.activation in ACTIVATIONS, 'classifier.activation',
           f'unknown activation {self.activation!r}',
           f'pass --classifier.activation with one of {", ".join(ACTIVATIONS)}')
    check(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0,
           'classifier.dropout', f'must be within [0, 1), got {self.dropout!r}',
           'pass --classifier.dropout with a value such as 0.3, or 0 to disable it')
    check(isinstance(self.input_noise, (int, float)) and self.input_noise >= 0,
           'classifier.input_noise', f'must be 0 or more, got {self.input_noise!r}',
           'pass --classifier.input_noise with a value such as 0.3, or 0 to disable it')
    check(self.optimizer in OPTIMIZERS, 'classifier.optimizer',
           f'unknown optimizer {self.optimizer!r}',
           f'pass --classifier.optimizer with one of {", ".join(OPTIMIZERS)}')
    check(isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0,
           'classifier.learning_rate', f'must be positive, got {self.learning_rate!r}',
           'pass --classifier.learning_rate with a value such as 0.001')
    _check_positive(self.batch_size, 'classifier.batch_size')
    _check_positive(self.epochs, 'classifier.epochs')
    _check_positive(self.train_steps, 'classifier.train_steps', allow_none=True)
    _check_positive(self.eval_steps, 'classifier.eval_steps', allow_none=True)


@dataclasses.dataclass(frozen=True)
class GanConfig:
  """The GAN and how it is trained."""
  # `dense` (MLP), `dcgan` (convolutional), or `auto`: dense under 16 pixels a side, else dcgan.
  architecture: str = 'auto'
  latent_dim: int = 64
  # The global batch, split over the replicas of a distribution strategy.
  batch_size: int = 64
  # Training is epochs x steps_per_epoch steps; a sample grid is written after each epoch.
  # Measured with the default classifier (benchmarks/model_quality.py): 40 epochs reach 87% of
  # the real classifier score on digits (the dense GAN, about a minute on 2 CPUs) and 82% on
  # Fashion-MNIST (the DCGAN, about 24 minutes). In 10-epoch trials on Fashion-MNIST, a
  # generator learning rate of 2e-4, a decay to 10%, or no label smoothing did no better.
  epochs: int = 40
  steps_per_epoch: int = 200
  # Training steps per call of the compiled train function. Keras pays a per-call cost in
  # Python (callbacks, logs) that a small GAN's step does not hide: on 2 CPUs the dense GAN ran
  # at 0.74-0.92 of a hand-written loop's speed with 1, 1.15-1.33 with 10 (gan_throughput.py).
  # Progress and batch-level callbacks then see every 10th step; epochs are unchanged.
  steps_per_execution: int = 10
  # A faster generator keeps pace with the discriminator (measured on digits: distance 5.0 and
  # 87% of the real classifier score, against 19.8 and 72% at 2e-4).
  generator_learning_rate: float = 5e-4
  discriminator_learning_rate: float = 2e-4
  beta_1: float = 0.5
  # Both learning rates decay exponentially to this fraction of their start by the last step.
  lr_decay: float = 0.5
  # One-sided label smoothing of the real targets; 0 disables it.
  label_smoothing: float = 0.1

  def __post_init__(self):
    check(self.architecture in GAN_ARCHITECTURES, 'gan.architecture',
           f'unknown architecture {self.architecture!r}',
           f'pass --gan.architecture with one of {", ".join(GAN_ARCHITECTURES)}')
    for name in ('latent_dim', 'batch_size', 'epochs', 'steps_per_epoch', 'steps_per_execution'):
      _check_positive(getattr(self, name), f'gan.{name}')
    for name in ('generator_learning_rate', 'discriminator_learning_rate'):
      check(isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0,
             f'gan.{name}', f'must be positive, got {getattr(self, name)!r}',
             f'pass --gan.{name} with a value such as 0.0002')
    check(isinstance(self.beta_1, (int, float)) and 0.0 <= self.beta_1 < 1.0, 'gan.beta_1',
           f'must be within [0, 1), got {self.beta_1!r}', 'pass --gan.beta_1 0.5')
    check(isinstance(self.lr_decay, (int, float)) and 0.0 < self.lr_decay <= 1.0,
           'gan.lr_decay', f'must be within (0, 1], got {self.lr_decay!r}',
           'pass --gan.lr_decay 1 for a constant learning rate')
    check(isinstance(self.label_smoothing, (int, float)) and 0.0 <= self.label_smoothing < 0.5,
           'gan.label_smoothing', f'must be within [0, 0.5), got {self.label_smoothing!r}',
           'pass --gan.label_smoothing 0.1, or 0 to disable it')


@dataclasses.dataclass(frozen=True)
class GeneratorEvaluationConfig:
  """Blessing thresholds for the generator (GeneratorEvaluator)."""
  # Generated and real images compared, each.
  num_samples: int = 1000
  # The Fréchet classifier distance of generated to real eval images, divided by the real
  # train images' distance to the same eval images, must be at most this. Measured with the
  # default classifier (benchmarks/generator_thresholds.py, classifier_input_noise.py): on
  # digits, trained generators 4-5 times the real distance, untrained 43, collapsed onto one
  # image 76; on Fashion-MNIST, trained 7-18, untrained 125, collapsed 51.
  max_distance_ratio: float = 20.0
  # The generated classifier score must be at least this fraction of the real images' score.
  min_score_ratio: float = 0.6
  # ...and the distance at most this fraction above the latest blessed generator's.
  max_distance_increase: float = 0.25

  def __post_init__(self):
    _check_positive(self.num_samples, 'generator_evaluation.num_samples')
    check(isinstance(self.max_distance_ratio, (int, float)) and self.max_distance_ratio > 0,
           'generator_evaluation.max_distance_ratio',
           f'must be positive, got {self.max_distance_ratio!r}',
           'pass --generator_evaluation.max_distance_ratio with a positive value such as 20')
    _check_fraction(self.min_score_ratio, 'generator_evaluation.min_score_ratio')
    check(isinstance(self.max_distance_increase, (int, float)) and
           self.max_distance_increase >= 0, 'generator_evaluation.max_distance_increase',
           f'must be 0 or more, got {self.max_distance_increase!r}',
           'pass --generator_evaluation.max_distance_increase 0.25')


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
  """Blessing thresholds for the classifier (TFMA)."""
  # The candidate's eval accuracy must be at least this.
  min_accuracy: float = 0.9
  # ...and at most this much below the latest blessed model's accuracy.
  max_accuracy_drop: float = 0.01

  def __post_init__(self):
    _check_fraction(self.min_accuracy, 'evaluation.min_accuracy')
    _check_fraction(self.max_accuracy_drop, 'evaluation.max_accuracy_drop')


@dataclasses.dataclass(frozen=True)
class PublishConfig:
  """Infra validation, pushes to the serving root, and the generator's TF Hub module."""
  # Pushed versions kept per model; older ones are deleted after each push.
  keep_versions: int = 3
  # Where the model server sees the serving root (e.g. a volume mount); '' means the root itself.
  models_config_base_path: str = ''
  # Infra validation: time for the candidate to become AVAILABLE, and requests sent to it.
  infra_timeout_seconds: float = 120.0
  infra_num_requests: int = 8
  # A tensorflow_model_server binary to validate with; '' uses one on PATH, else ours.
  serving_binary: str = ''
  hub_publisher: str = 'ganpipe'
  hub_module: str = 'generator'
  hub_license: str = 'Apache-2.0'
  # Also write <version>.tar.gz beside the module, as tfhub.dev hosts it.
  hub_archive: bool = True

  def __post_init__(self):
    check(isinstance(self.keep_versions, int) and self.keep_versions >= 1,
           'publish.keep_versions', f'must be 1 or more, got {self.keep_versions!r}',
           'pass --publish.keep_versions 3')
    check(self.infra_timeout_seconds > 0, 'publish.infra_timeout_seconds',
           f'must be positive, got {self.infra_timeout_seconds!r}',
           'pass --publish.infra_timeout_seconds 120')
    check(isinstance(self.infra_num_requests, int) and self.infra_num_requests >= 1,
           'publish.infra_num_requests', f'must be 1 or more, got {self.infra_num_requests!r}',
           'pass --publish.infra_num_requests 8')
    for name in ('hub_publisher', 'hub_module'):
      value = getattr(self, name)
      check(bool(value) and value.replace('-', '').replace('_', '').isalnum(),
             f'publish.{name}', f'use letters, digits, - and _, got {value!r}',
             f'pass --publish.{name} NAME')


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
  """How `ganpipe compile-kubeflow` targets a Kubeflow Pipelines cluster."""
  # The pipeline image, built from kubeflow/Dockerfile and pushed where the cluster can pull it.
  image: str = 'ghcr.io/ganpipe/ganpipe:latest'
  # What each Trainer requests: an accelerator type and count, vCPUs and memory (GB).
  accelerator_type: str = 'nvidia.com/gpu'
  accelerator_count: int = 1
  trainer_cpu: float = 8.0
  trainer_memory_gb: float = 32.0
  output_path: str = 'outputs/kubeflow/ganpipe.json'
  # A PersistentVolumeClaim mounted at `volume_mount_path` in every pipeline pod (KFP's
  # kfp-kubernetes pvcMount), so that roots may live on it; '' mounts nothing.
  volume_claim: str = ''
  volume_mount_path: str = '/mnt/ganpipe'

  def __post_init__(self):
    check(not self.volume_claim or re.fullmatch(r'[a-z0-9]([-a-z0-9.]*[a-z0-9])?',
                                                 self.volume_claim) is not None,
           'kubeflow.volume_claim', f'{self.volume_claim!r} is not a Kubernetes object name',
           'pass --kubeflow.volume_claim with lower-case letters, digits, - and .')
    check(self.volume_mount_path.startswith('/') and self.volume_mount_path.rstrip('/') != '',
           'kubeflow.volume_mount_path', f'must be an absolute path below /, got '
           f'{self.volume_mount_path!r}', 'pass --kubeflow.volume_mount_path /mnt/ganpipe')
    check(bool(self.image.strip()), 'kubeflow.image', 'must name a container image',
           'pass --kubeflow.image REGISTRY/IMAGE:TAG')
    check(isinstance(self.accelerator_count, int) and self.accelerator_count >= 0,
           'kubeflow.accelerator_count', f'must be 0 or more, got {self.accelerator_count!r}',
           'pass --kubeflow.accelerator_count 1 (0 trains on CPU)')
    check(self.trainer_cpu > 0 and self.trainer_memory_gb > 0, 'kubeflow.trainer_cpu',
           'CPU and memory requests must be positive', 'pass --kubeflow.trainer_cpu 8')


@dataclasses.dataclass(frozen=True)
class BeamConfig:
  """How the data components' Beam pipelines run."""
  # DirectRunner mode: worker processes, threads, or in the component's own process. Worker
  # processes use every core but each imports TensorFlow first, which small data never repays.
  direct_running_mode: str = 'multi_processing'
  # DirectRunner workers; 0 means one per CPU core.
  direct_num_workers: int = 0
  # Log level of Beam's worker processes (DEBUG, INFO, WARNING, ERROR).
  worker_log_level: str = 'ERROR'
  # Extra Beam pipeline args, e.g. for Dataflow or Flink.
  extra_args: Tuple[str, ...] = ()

  def __post_init__(self):
    check(self.direct_running_mode in DIRECT_RUNNING_MODES, 'beam.direct_running_mode',
           f'unknown mode {self.direct_running_mode!r}',
           f'pass --beam.direct_running_mode with one of {", ".join(DIRECT_RUNNING_MODES)}')
    check(isinstance(self.direct_num_workers, int) and self.direct_num_workers >= 0,
           'beam.direct_num_workers', f'must be 0 or more, got {self.direct_num_workers!r}',
           'pass --beam.direct_num_workers 0 (one per core) or a worker count')
    check(self.worker_log_level in LOG_LEVELS, 'beam.worker_log_level',
           f'unknown log level {self.worker_log_level!r}',
           f'pass --beam.worker_log_level with one of {", ".join(LOG_LEVELS)}')

  def pipeline_args(self):
    return [
        f'--runner={BEAM_LOCAL_RUNNER}',  # `extra_args` may name another: the last one wins.
        f'--direct_running_mode={self.direct_running_mode}',
        f'--direct_num_workers={self.direct_num_workers}',
        f'--default_sdk_harness_log_level={self.worker_log_level}',
        *self.extra_args,
    ]


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything a pipeline run needs."""
  name: str = 'ganpipe'
  runner: str = 'beam'
  seed: int = 42
  enable_cache: bool = True
  paths: PathsConfig = PathsConfig()
  data: DataConfig = DataConfig()
  classifier: ClassifierConfig = ClassifierConfig()
  evaluation: EvaluationConfig = EvaluationConfig()
  gan: GanConfig = GanConfig()
  generator_evaluation: GeneratorEvaluationConfig = GeneratorEvaluationConfig()
  publish: PublishConfig = PublishConfig()
  beam: BeamConfig = BeamConfig()
  kubeflow: KubeflowConfig = KubeflowConfig()

  def __post_init__(self):
    check(bool(self.name) and self.name.replace('-', '').replace('_', '').isalnum(), 'name',
           f'pipeline names use letters, digits, - and _, got {self.name!r}',
           'pass --name my-pipeline')
    check(self.runner in RUNNERS, 'runner', f'unknown runner {self.runner!r}',
           f'pass --runner with one of {", ".join(RUNNERS)}')


def get_config(small: bool = False) -> PipelineConfig:
  """The default configuration, or with `small=True` a quick variant for tests."""
  if not small:
    return PipelineConfig()
  return PipelineConfig(
      classifier=ClassifierConfig(hidden_units=(64,), epochs=8),
      evaluation=EvaluationConfig(min_accuracy=0.5, max_accuracy_drop=0.5),
      gan=GanConfig(epochs=5, steps_per_epoch=300),
      generator_evaluation=GeneratorEvaluationConfig(num_samples=300),
      # The small data of tests runs faster in process than in worker processes.
      beam=BeamConfig(direct_running_mode='in_memory', direct_num_workers=1),
  )
