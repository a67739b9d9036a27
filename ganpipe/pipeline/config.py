"""Typed, validated configuration for the whole pipeline (frozen dataclasses)."""

import dataclasses
import re
from typing import Tuple

from ganpipe.components.hub_publisher import tfhub_metadata
from ganpipe.models import hparams
from ganpipe.pipeline import data_config

# The models' sections, and the validation every section shares, come from the models.
ConfigError = hparams.ConfigError
check = hparams.check
ClassifierConfig = hparams.ClassifierConfig
GanConfig = hparams.GanConfig
# The data section lives in its own module; it is named here with the others.
DataConfig = data_config.DataConfig

RUNNERS = ('beam', 'local')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
DIRECT_RUNNING_MODES = ('multi_processing', 'multi_threading', 'in_memory')
# Named outright: Beam 2.72's DirectRunner first tries Prism, a Go binary downloaded from GitHub
# at run time, which ignores the direct_* options below and, offline, fails and leaves litter.
BEAM_LOCAL_RUNNER = 'FnApiRunner'


@dataclasses.dataclass(frozen=True)
class PathsConfig:
  """Where the pipeline writes. Local paths or object-store URIs (gs://, s3://).

  Attributes:
    pipeline_root: the components' outputs (TFX's pipeline root).
    metadata_path: the ML Metadata SQLite file that records every run.
    serving_root: pushed models, as TF Serving reads them: <serving_root>/<model>/<version>/.
    hub_root: published TF Hub modules: <hub_root>/<publisher>/<module>/<version>/.
  """
  pipeline_root: str = 'outputs/pipeline'
  metadata_path: str = 'outputs/metadata/metadata.sqlite'
  serving_root: str = 'outputs/serving'
  hub_root: str = 'outputs/hub'

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      check(isinstance(value, str) and bool(value.strip()), f'paths.{field.name}',
            'must be a non-empty path', f'pass --paths.{field.name} PATH')


@dataclasses.dataclass(frozen=True)
class GeneratorEvaluationConfig:
  """Blessing thresholds for the generator (GeneratorEvaluator).

  Attributes:
    num_samples: generated and real images compared, each.
    max_distance_ratio: the Fréchet classifier distance of generated to real eval images,
      divided by the real train images' distance to the same eval images, must be at most this.
    min_score_ratio: the generated classifier score must be at least this fraction of the real
      images' score.
    max_distance_increase: ...and the distance at most this fraction above the latest blessed
      generator's.
  """
  num_samples: int = 1000
  # The distance ratio with the default classifier (benchmarks/generator_thresholds.py): on
  # digits, trained generators 4-5 times the real distance, untrained 43, collapsed onto one
  # image 76; on Fashion-MNIST, trained 7-18, untrained 125, collapsed 51.
  max_distance_ratio: float = 20.0
  min_score_ratio: float = 0.6
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
  """Blessing thresholds for the classifier (TFMA).

  Attributes:
    min_accuracy: the candidate's eval accuracy must be at least this.
    max_accuracy_drop: ...and at most this much below the latest blessed classifier's.
  """
  min_accuracy: float = 0.9
  max_accuracy_drop: float = 0.01

  def __post_init__(self):
    hparams.check_fraction(self.min_accuracy, 'evaluation.min_accuracy')
    hparams.check_fraction(self.max_accuracy_drop, 'evaluation.max_accuracy_drop')


@dataclasses.dataclass(frozen=True)
class PublishConfig:
  """Infra validation, pushes to the serving root, and the generator's TF Hub module.

  Attributes:
    keep_versions: pushed versions kept per model; older ones are deleted after each push.
    rollout: `direct` serves a push at once; `canary` beside the stable one (`ganpipe rollout`).
    models_config_base_path: where the model server sees the serving root in models.config
      (a volume mount, say); empty means the serving root itself.
    infra_timeout_seconds: infra validation: time for the candidate to become AVAILABLE.
    infra_num_requests: infra validation: requests sent to the candidate.
    serving_binary: a tensorflow_model_server binary to validate with; empty uses one on PATH,
      else ganpipe's own server.
    hub_publisher: the TF Hub publisher folder: <hub_root>/<publisher>/<module>/<version>/; a
      tfhub.dev publisher id, so lower-case letters, digits and -.
    hub_module: the TF Hub module name.
    hub_license: the module's license, an SPDX identifier (Apache-2.0, MIT, ...).
    hub_archive: also write <version>.tar.gz beside the module, as tfhub.dev hosts it.
    hub_asset_url: the http(s) URL paths.hub_root is served from; the documentation's asset-path
      is <hub_asset_url>/<publisher>/<module>/<version>.tar.gz (empty: none).
  """
  keep_versions: int = 3
  rollout: str = 'direct'
  models_config_base_path: str = ''
  infra_timeout_seconds: float = 120.0
  infra_num_requests: int = 8
  serving_binary: str = ''
  hub_publisher: str = 'ganpipe'
  hub_module: str = 'generator'
  hub_license: str = 'Apache-2.0'
  hub_archive: bool = True
  hub_asset_url: str = ''

  def __post_init__(self):
    check(isinstance(self.keep_versions, int) and self.keep_versions >= 1,
          'publish.keep_versions', f'must be 1 or more, got {self.keep_versions!r}',
          'pass --publish.keep_versions 3')
    check(self.rollout in ('direct', 'canary'), 'publish.rollout',
          f'must be direct or canary, got {self.rollout!r}', 'pass --publish.rollout canary')
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
  """How `ganpipe compile-kubeflow` targets a Kubeflow Pipelines cluster.

  Attributes:
    image: the pipeline image every task runs, built from ganpipe/kubeflow/Dockerfile and pushed
      where the cluster can pull it; compile-kubeflow requires it.
    accelerator_type: what each Trainer requests as its accelerator.
    accelerator_count: how many accelerators each Trainer requests; 0 trains on CPU.
    trainer_cpu: vCPUs each Trainer requests.
    trainer_memory_gb: memory (GB) each Trainer requests.
    data_cpu: vCPUs every other task requests; its Beam DirectRunner starts one worker per vCPU
      here (unless --beam.direct_num_workers says otherwise).
    data_memory_gb: memory (GB) every other task requests.
    output_path: where compile-kubeflow writes the PipelineJob JSON; the KFP package goes beside
      it, as .yaml.
    volume_claim: a PersistentVolumeClaim mounted in every pipeline pod (KFP's kfp-kubernetes
      pvcMount), so that roots may live on it; empty mounts nothing.
    volume_mount_path: where the volume claim is mounted.
  """
  # No default: a placeholder would compile, upload and then fail every pod on the cluster with
  # ImagePullBackOff, or run an image without this code (compile.check_config explains).
  image: str = ''
  accelerator_type: str = 'nvidia.com/gpu'
  accelerator_count: int = 1
  trainer_cpu: float = 8.0
  trainer_memory_gb: float = 32.0
  # The data tasks' Beam workers are bounded by what they request, not by the node's cores,
  # each worker importing TensorFlow.
  data_cpu: float = 2.0
  data_memory_gb: float = 8.0
  output_path: str = 'outputs/kubeflow/ganpipe.json'
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
    check(not any(c.isspace() for c in self.image), 'kubeflow.image',
          f'{self.image!r} is not a container image name',
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
  """How the data components' Beam pipelines run.

  Attributes:
    direct_running_mode: the DirectRunner's mode: multi_processing (worker processes),
      multi_threading, or in_memory (in the component's own process).
    direct_num_workers: DirectRunner workers; 0 means one per CPU core.
    worker_log_level: log level of Beam's worker processes: DEBUG, INFO, WARNING or ERROR.
    extra_args: extra Beam pipeline args, e.g. --runner=DataflowRunner,--project=P.
  """
  # Worker processes use every core but each imports TensorFlow first: small data never repays it.
  direct_running_mode: str = 'multi_processing'
  direct_num_workers: int = 0
  worker_log_level: str = 'ERROR'
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
  """Everything a pipeline run needs.

  Attributes:
    name: the pipeline's name in ML Metadata.
    runner: beam (TFX's BeamDagRunner) or local (its LocalDagRunner).
    seed: the seed of training, sampling and evaluation; the same seed gives the same run.
    enable_cache: reuse the outputs of a component whose inputs and settings did not change.
  """
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
    hparams.check_gan_image_shape(self.gan.architecture, self.data.image_shape)

  def gan_epochs(self) -> int:
    """The GAN's epochs: gan.epochs, or the default of the architecture the images pick."""
    return self.gan.epochs_for(
        hparams.resolve_architecture(self.gan.architecture, self.data.image_shape))


def get_config(small: bool = False) -> PipelineConfig:
  """The default configuration, or with `small=True` a quick variant for tests."""
  if not small:
    return PipelineConfig()
  return PipelineConfig(
      classifier=ClassifierConfig(hidden_units=(64,), epochs=8, batch_size=32),
      evaluation=EvaluationConfig(min_accuracy=0.5, max_accuracy_drop=0.5),
      gan=GanConfig(epochs=5, steps_per_epoch=300),
      generator_evaluation=GeneratorEvaluationConfig(num_samples=300),
      # The small data of tests runs faster in process than in worker processes.
      beam=BeamConfig(direct_running_mode='in_memory', direct_num_workers=1),
  )


# --small trains the dense GAN 5 x 300 steps: half a minute on 2 CPUs. A DCGAN step costs about
# as much per pixel (benchmarks/gan_training_time.py): 1,500 steps took 14 minutes at 16x16, and
# would take an hour at 64x64. So the DCGAN gets this many pixel-steps (steps x height x width):
# a minute or two at any size. It proves the pipeline runs; so few steps rarely bless the GAN.
SMALL_DCGAN_PIXEL_STEPS = 150_000


def small_for_image_size(config: PipelineConfig, keep=()) -> PipelineConfig:
  """The small configuration's GAN, cut to a minute or two of training at `config`'s image size.

  Args:
    config: a configuration from `get_config(small=True)`, with any overrides applied.
    keep: dotted field names the user set; they are left as they are.
  Returns:
    `config`, with a DCGAN's steps per epoch cut to about SMALL_DCGAN_PIXEL_STEPS pixel-steps
    in all (at least one step an epoch); a dense GAN's are unchanged.
  """
  height, width, _ = config.data.image_shape
  gan = config.gan
  if (hparams.resolve_architecture(gan.architecture, config.data.image_shape) != hparams.DCGAN
      or 'gan.steps_per_epoch' in keep):
    return config
  steps = max(1, round(SMALL_DCGAN_PIXEL_STEPS / (config.gan_epochs() * height * width)))
  return dataclasses.replace(config, gan=dataclasses.replace(
      gan, steps_per_epoch=min(steps, gan.steps_per_epoch)))
