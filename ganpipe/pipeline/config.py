"""Typed, validated configuration for the whole pipeline (frozen dataclasses)."""

import dataclasses
import re
from typing import Optional, Tuple

from ganpipe.components.hub_publisher import tfhub_metadata
from ganpipe.components.image_example_gen import options as ingestion
from ganpipe.models import hparams

# The models' sections, and the validation every section shares, come from the models.
ConfigError = hparams.ConfigError
check = hparams.check
ClassifierConfig = hparams.ClassifierConfig
GanConfig = hparams.GanConfig

RUNNERS = ('beam', 'local')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
DIRECT_RUNNING_MODES = ('multi_processing', 'multi_threading', 'in_memory')
# The DirectRunner's engine for batch pipelines, named outright: Beam 2.72's DirectRunner first
# tries Prism, a Go binary it downloads from GitHub at run time. Prism ignores the direct_* options
# below, and without network each attempt fails and leaves an empty /tmp/beam-temp* directory.
BEAM_LOCAL_RUNNER = 'FnApiRunner'


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
  dataset: str = ingestion.DIGITS
  # The source folder: a class-per-folder tree, IDX pairs, .npz files or TFRecords. For
  # fashion-mnist it defaults to /usr/share/datasets/fashion-mnist.
  data_dir: Optional[str] = None
  # A curated schema.pbtxt to validate against; None infers one from the train split.
  schema_path: Optional[str] = None
  # Target (height, width) and channel count; None means the dataset's native shape.
  image_size: Optional[Tuple[int, int]] = None
  channels: Optional[int] = None
  # Images of another size are resized, or rejected.
  on_wrong_size: str = ingestion.RESIZE
  # Accepted encodings of image files.
  formats: Tuple[str, ...] = ingestion.DEFAULT_FORMATS
  # Larger input images are rejected (too_large) from their header, without being decoded.
  max_image_pixels: int = ingestion.MAX_PIXELS
  # Ingestion fails when more than this fraction of the records is rejected.
  max_bad_fraction: float = 0.01
  # Hash buckets of the deterministic split when the source gives no splits of its own.
  train_buckets: int = 4
  eval_buckets: int = 1

  def __post_init__(self):
    check(self.dataset in ingestion.SOURCES, 'data.dataset',
          f'unknown dataset {self.dataset!r}',
          f'pass --data.dataset with one of {", ".join(ingestion.SOURCES)}')
    if self.dataset in ingestion.NEEDS_INPUT_BASE:
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
    check(self.on_wrong_size in ingestion.WRONG_SIZE_POLICIES, 'data.on_wrong_size',
          f'unknown policy {self.on_wrong_size!r}',
          f'pass --data.on_wrong_size with one of {", ".join(ingestion.WRONG_SIZE_POLICIES)}')
    check(len(self.formats) >= 1 and all(f in ingestion.FORMAT_NAMES for f in self.formats),
          'data.formats', f'unknown image formats in {self.formats!r}',
          f'pass --data.formats with some of {", ".join(ingestion.FORMAT_NAMES)}')
    height, width, _ = self.image_shape
    check(isinstance(self.max_image_pixels, int) and self.max_image_pixels >= height * width,
          'data.max_image_pixels',
          f'{self.max_image_pixels!r} is less than the {height}x{width} output images',
          f'pass --data.max_image_pixels of at least {height * width}')
    hparams.check_fraction(self.max_bad_fraction, 'data.max_bad_fraction')
    hparams.check_positive(self.train_buckets, 'data.train_buckets')
    hparams.check_positive(self.eval_buckets, 'data.eval_buckets')

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    """(height, width, channels) of every image after ingestion."""
    native = ingestion.NATIVE_SHAPES[self.dataset] or ingestion.DEFAULT_SHAPES[self.dataset]
    height, width = self.image_size or native[:2]
    return (height, width, self.channels or native[2])


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
    hparams.check_positive(self.num_samples, 'generator_evaluation.num_samples')
    check(isinstance(self.max_distance_ratio, (int, float)) and self.max_distance_ratio > 0,
          'generator_evaluation.max_distance_ratio',
          f'must be positive, got {self.max_distance_ratio!r}',
          'pass --generator_evaluation.max_distance_ratio with a positive value such as 20')
    hparams.check_fraction(self.min_score_ratio, 'generator_evaluation.min_score_ratio')
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
    hparams.check_fraction(self.min_accuracy, 'evaluation.min_accuracy')
    hparams.check_fraction(self.max_accuracy_drop, 'evaluation.max_accuracy_drop')


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
  # The TF Hub module's handle, <publisher>/<module>: a tfhub.dev publisher id is lower-case.
  hub_publisher: str = 'ganpipe'
  hub_module: str = 'generator'
  # An SPDX identifier; the documentation's license tag maps it onto tfhub.dev's ids.
  hub_license: str = 'Apache-2.0'
  # Also write <version>.tar.gz beside the module, as tfhub.dev hosts it.
  hub_archive: bool = True
  # The http(s) URL that paths.hub_root is served from. The module documentation's asset-path,
  # which tfhub.dev requires and downloads, is <url>/<publisher>/<module>/<version>.tar.gz;
  # '' leaves it out.
  hub_asset_url: str = ''

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
    check(tfhub_metadata.PUBLISHER_ID.fullmatch(self.hub_publisher) is not None,
          'publish.hub_publisher', 'a tfhub.dev publisher id uses lower-case letters, digits '
          f'and -, got {self.hub_publisher!r}', 'pass --publish.hub_publisher NAME')
    check(bool(self.hub_module) and self.hub_module.replace('-', '').replace('_', '').isalnum(),
          'publish.hub_module', f'use letters, digits, - and _, got {self.hub_module!r}',
          'pass --publish.hub_module NAME')
    if self.hub_asset_url:
      problem = tfhub_metadata.asset_url_problem(self.hub_asset_url)
      check(problem is None, 'publish.hub_asset_url', str(problem),
            'pass --publish.hub_asset_url with the https:// URL that paths.hub_root is served '
            'from')
      check(self.hub_archive, 'publish.hub_asset_url',
            'the asset is the <version>.tar.gz archive, which --publish.hub_archive false '
            'turns off', 'pass --publish.hub_asset_url only with --publish.hub_archive true')


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
  """How `ganpipe compile-kubeflow` targets a Kubeflow Pipelines cluster."""
  # The pipeline image, built from ganpipe/kubeflow/Dockerfile and pushed where the cluster can
  # pull it.
  image: str = 'ghcr.io/ganpipe/ganpipe:latest'
  # What each Trainer requests: an accelerator type and count, vCPUs and memory (GB).
  accelerator_type: str = 'nvidia.com/gpu'
  accelerator_count: int = 1
  trainer_cpu: float = 8.0
  trainer_memory_gb: float = 32.0
  # What every other task requests: vCPUs and memory (GB). Its Beam DirectRunner starts one
  # worker per vCPU here (unless --beam.direct_num_workers says otherwise), not one per core of
  # the node, each worker importing TensorFlow.
  data_cpu: float = 2.0
  data_memory_gb: float = 8.0
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
    check(self.data_cpu >= 1 and self.data_memory_gb > 0, 'kubeflow.data_cpu',
          f'the data tasks need at least 1 vCPU and some memory, got {self.data_cpu!r} vCPUs '
          f'and {self.data_memory_gb!r} GB',
          'pass --kubeflow.data_cpu 2 --kubeflow.data_memory_gb 8')

  @property
  def data_beam_workers(self) -> int:
    """The Beam DirectRunner workers of a data task: one per vCPU it requests."""
    return max(1, int(self.data_cpu))


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
