"""The models' hyperparameters: the classifier and GAN sections of the pipeline's configuration.

Typed, frozen and validated on construction, with no TensorFlow import, so that the command line
checks a value before anything loads. The pipeline's own sections build on ConfigError and
`check` from here.
"""

import dataclasses
from typing import Optional, Tuple

ACTIVATIONS = ('relu', 'tanh')
OPTIMIZERS = ('adam', 'sgd', 'rmsprop')
# Learning-rate schedules: constant, or a half cosine over the epochs down to near 0.
CONSTANT = 'constant'
COSINE = 'cosine'
LR_SCHEDULES = (CONSTANT, COSINE)
# The GAN architectures, and `auto`, which picks one by image size (`resolve_architecture`).
DENSE = 'dense'
DCGAN = 'dcgan'
GAN_ARCHITECTURES = (DENSE, DCGAN)
# The GAN's defaults by architecture: the generator's and the discriminator's Adam learning rates
# (GanConfig.generator_learning_rate, .discriminator_learning_rate), and whether the
# discriminator sees the batch's standard deviation (GanConfig.minibatch_stddev).
#
# A faster generator keeps pace with the discriminator. On digits (the dense GAN, generator
# weights averaged), the generated/real classifier score was 80.3% at 5e-4, 86.2% at 1e-3 and
# 89.7% at 2e-3, means of 3 seeds by benchmarks/gan_quality.py; before the average, 2e-4 gave 72%
# and 5e-4 87% with the classifier of then.
#
# On Fashion-MNIST (the DCGAN; gan_quality.py, 40 epochs, seed 1 unless said) the score was 82.5% at
# the former defaults, 5e-4 and 2e-4; 83.3% at 1e-3 / 2e-4, 83.2% at 2e-3 / 2e-4, 83.6% at 1e-3 /
# 4e-4 and 82.1% at 2e-3 / 8e-4 (generator / discriminator). With the minibatch standard deviation
# it was 84.2% at 1e-3 / 2e-4 (82.2% for seed 2), and at 1e-3 / 4e-4, the defaults now, 84.6%, 82.6%
# and 83.8% for seeds 1-3 (mean 83.6%; the independent judge 87.2%, 83.0%, 84.9%), with Frechet
# distance ratios of 15.3-16.7 against the 20 blessing allows. Short of issue 27's 85%: the judge is
# as spread over the classes on generated images as on real ones (class entropy 2.298 against 2.303
# nats) and far less sure of each (0.32-0.34 against 0.15), so what is missing is sharper images,
# not more varied ones. Tried for that at seed 1, none adopted: a wider generator (256 filters at a
# quarter size, 19% slower a step) 83.7%; tf_keras's SpectralNormalization on the discriminator's
# convolutions 80.1%; a decay to 10% 81.1%. Twice the steps did better: see EPOCHS. At seed 2 and
# 40 epochs, an R1 penalty of 10 (GanConfig.r1_gamma) in place of the discriminator's dropout and
# label smoothing gave 81.3% (independent judge 83.9%, distance ratio 18.7, prediction entropy 0.35)
# against 82.6% (83.0%) without, so R1 stays off.
GENERATOR_LEARNING_RATES = {DENSE: 2e-3, DCGAN: 1e-3}
DISCRIMINATOR_LEARNING_RATES = {DENSE: 2e-4, DCGAN: 4e-4}
MINIBATCH_STDDEV = {DENSE: False, DCGAN: True}
# The training budget by architecture, in epochs of GanConfig.steps_per_epoch steps
# (GanConfig.epochs). 40 x 200 steps take the dense GAN to 89.7% of the real classifier score on
# digits (gan_quality.py, 3 seeds; about a minute on 2 CPUs). The DCGAN scored 84.6%, 82.6% and
# 83.8% on Fashion-MNIST at 40 (seeds 1-3, mean 83.6%) and 85.6%, 84.4% and 85.4% at 80 (mean
# 85.1%; the independent judge 87.3%, 85.6%, 87.0%): 16,000 steps, about 17 passes, 55 minutes
# on 2 idle CPUs. Its images are sharper by the judge's certainty (prediction entropy 0.30-0.32
# against 0.32-0.34) and closer by the Frechet distance ratio (13.0-14.0 against 15.3-16.7).
# Those three ran with oneDNN off; with it on (the default since, see ganpipe/__init__.py), seeds
# 1-3 scored 86.3%, 85.5% and 85.5% (mean 85.7%; independent judge 88.3%, 87.7%, 86.8%; distance
# ratio 11.9, 11.8, 12.5; 77-81 minutes each on 2 idle CPUs). The whole default pipeline run
# (seed 42, oneDNN on) pushed a generator that scored 84.96% (independent judge 85.8%, distance
# ratio 13.1; gan_quality.py --generator).
EPOCHS = {DENSE: 40, DCGAN: 80}
AUTO = 'auto'
# `auto` picks the DCGAN from this many pixels a side. The DCGAN's generator starts at a quarter
# of the image's height and width and upsamples twice by 2, so both must be multiples of 4.
DCGAN_MIN_SIDE = 16
DCGAN_SIDE_MULTIPLE = 4


class ConfigError(ValueError):
  """An invalid configuration value. The message names the option and the fix."""

  def __init__(self, option: str, problem: str, fix: str):
    self.option = option
    super().__init__(f'{option}: {problem}. Fix: {fix}.')


def check(condition: bool, option: str, problem: str, fix: str) -> None:
  """Raises ConfigError naming `option`, what is wrong and how to fix it, unless `condition`."""
  if not condition:
    raise ConfigError(option, problem, fix)


def check_positive(value: Optional[int], option: str, allow_none: bool = False) -> None:
  if value is None and allow_none:
    return
  check(isinstance(value, int) and not isinstance(value, bool) and value > 0, option,
        f'must be a positive integer, got {value!r}', f'pass --{option} with a value >= 1')


def check_fraction(value: float, option: str) -> None:
  check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0, option,
        f'must be within [0, 1], got {value!r}', f'pass --{option} with a value from 0 to 1')


def resolve_architecture(architecture: str, image_shape: Tuple[int, int, int]) -> str:
  """`auto` is the dense GAN for images under DCGAN_MIN_SIDE pixels a side, the DCGAN otherwise."""
  if architecture != AUTO:
    return architecture
  return DENSE if min(image_shape[:2]) < DCGAN_MIN_SIDE else DCGAN


def check_gan_image_shape(architecture: str, image_shape: Tuple[int, int, int]) -> None:
  """Refuses an image size the GAN that `architecture` resolves to cannot generate.

  Checked with the configuration, so that a size the DCGAN cannot take fails before anything
  loads, not in the GAN trainer minutes into a run. The fix offered is a resize to a multiple of
  4: the dense GAN takes any size, but learns next to nothing at the sizes that pick the DCGAN.

  Raises:
    ConfigError: naming `data.image_size` and the nearest sizes that work.
  """
  if resolve_architecture(architecture, image_shape) != DCGAN:
    return
  height, width = image_shape[:2]
  multiple = DCGAN_SIDE_MULTIPLE
  if height % multiple == 0 and width % multiple == 0:
    return
  below = [max(multiple, side - side % multiple) for side in (height, width)]
  above = [side + (-side) % multiple for side in (height, width)]
  picked = ('picked by --gan.architecture auto for images of '
            f'{DCGAN_MIN_SIDE} pixels a side and up' if architecture == AUTO
            else 'of --gan.architecture dcgan')
  raise ConfigError(
      'data.image_size',
      f'the DCGAN ({picked}) needs a height and width that are multiples of {multiple}, got '
      f'{height}x{width}',
      f'pass --data.image_size {below[0]},{below[1]} or {above[0]},{above[1]}, and every image '
      'is resized to it at ingestion')


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """The MLP classifier and how it is trained.

  Attributes:
    hidden_units: the units of each hidden Dense layer, comma-separated.
    activation: the hidden layers' activation: relu or tanh.
    dropout: the dropout rate after each hidden layer; 0 disables it.
    batch_norm: batch normalisation between each hidden layer's Dense and its activation.
    input_noise: the standard deviation of Gaussian noise added to the [0, 1] pixels while
      training; 0 disables it.
    optimizer: adam, sgd or rmsprop.
    learning_rate: the optimizer's learning rate (at the start, with a schedule).
    lr_schedule: constant, or cosine: a half cosine from learning_rate down to near 0 at the
      last epoch (by epoch; with train_steps, one epoch, the rate stays constant).
    batch_size: images per mini-batch. Batch normalisation's moving statistics, which
      inference uses, need a few hundred steps to reach the data's: on a few thousand images
      (the small configuration) batches of 32 give them those steps.
    epochs: full passes over the train split, unless train_steps is set.
    early_stopping_patience: stop once the eval loss has not improved for this many epochs, and
      keep the weights of the best epoch; 0 trains every epoch and keeps the last weights.
    cache_mb: the train and eval splits are read once and held in memory when together they
      take at most this many MB (as float32 pixels; in memory twice while the arrays become
      tensors); past it they are streamed from their files every epoch. 0 always streams.
    train_steps: train for exactly this many batches instead of epochs.
    eval_steps: eval batches per evaluation; none evaluates on the whole eval split.
  """
  # Fashion-MNIST eval accuracy (benchmarks/classifier_training.py, seeds 1-3): 0.906-0.909 with
  # these defaults; 0.892-0.896 with 256-128 units, no batch norm, a constant rate, batches of
  # 32 and 100 epochs. 256-128 with the rest as here gave 0.9016 for one seed: too close to 0.9.
  hidden_units: Tuple[int, ...] = (512, 256)
  activation: str = 'relu'
  dropout: float = 0.3
  # Input noise is off by default. At 0.3 (100 epochs) Fashion-MNIST eval accuracy was
  # 0.877-0.886, under its 0.89 goal; without, 0.893-0.896 (digits 0.975-0.983). The noisy
  # classifier is also less sure of generated images than of real ones: the same generators
  # scored 70-75% of the real classifier score on Fashion-MNIST (digits 77%) with it, 80-82%
  # (digits 84%) without.
  input_noise: float = 0.0
  batch_norm: bool = True
  optimizer: str = 'adam'
  learning_rate: float = 1e-3
  lr_schedule: str = COSINE
  batch_size: int = 128
  epochs: int = 30
  # Off: the eval loss bottoms out before the accuracy peaks. In a 40-epoch trial (512-256) it
  # kept epoch 19 at 0.8966, where training on reached 0.9042.
  early_stopping_patience: int = 0
  train_steps: Optional[int] = None
  eval_steps: Optional[int] = None
  cache_mb: int = 1024

  def __post_init__(self):
    check(len(self.hidden_units) >= 1, 'classifier.hidden_units',
          'needs at least one hidden layer', 'pass --classifier.hidden_units 512,256')
    for units in self.hidden_units:
      check_positive(units, 'classifier.hidden_units')
    check(self.activation in ACTIVATIONS, 'classifier.activation',
          f'unknown activation {self.activation!r}',
          f'pass --classifier.activation with one of {", ".join(ACTIVATIONS)}')
    check(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0,
          'classifier.dropout', f'must be within [0, 1), got {self.dropout!r}',
          'pass --classifier.dropout with a value such as 0.3, or 0 to disable it')
    check(isinstance(self.batch_norm, bool), 'classifier.batch_norm',
          f'must be true or false, got {self.batch_norm!r}', 'pass --classifier.batch_norm true')
    check(isinstance(self.input_noise, (int, float)) and self.input_noise >= 0,
          'classifier.input_noise', f'must be 0 or more, got {self.input_noise!r}',
          'pass --classifier.input_noise with a value such as 0.3, or 0 to disable it')
    check(self.optimizer in OPTIMIZERS, 'classifier.optimizer',
          f'unknown optimizer {self.optimizer!r}',
          f'pass --classifier.optimizer with one of {", ".join(OPTIMIZERS)}')
    check(isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0,
          'classifier.learning_rate', f'must be positive, got {self.learning_rate!r}',
          'pass --classifier.learning_rate with a value such as 0.001')
    check_positive(self.batch_size, 'classifier.batch_size')
    check_positive(self.epochs, 'classifier.epochs')
    check_positive(self.train_steps, 'classifier.train_steps', allow_none=True)
    check_positive(self.eval_steps, 'classifier.eval_steps', allow_none=True)
    check(self.lr_schedule in LR_SCHEDULES, 'classifier.lr_schedule',
          f'unknown schedule {self.lr_schedule!r}',
          f'pass --classifier.lr_schedule with one of {", ".join(LR_SCHEDULES)}')
    for name in ('early_stopping_patience', 'cache_mb'):
      value = getattr(self, name)
      check(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f'classifier.{name}', f'must be an integer >= 0, got {value!r}',
            f'pass --classifier.{name} with a value such as 10, or 0 to disable it')


@dataclasses.dataclass(frozen=True)
class GanConfig:
  """The GAN and how it is trained.

  Attributes:
    architecture: dense (MLP), dcgan (convolutional; height and width multiples of 4), or auto:
      dense under 16 pixels a side, else dcgan.
    latent_dim: the length of the generator's noise vector.
    batch_size: the global batch, split over the replicas of a distribution strategy.
    epochs: training is epochs x steps_per_epoch steps; a sample grid is written after each
      epoch. None (the default) takes the architecture's: 40 for the dense GAN, 80 for the
      DCGAN (EPOCHS).
    steps_per_epoch: training steps per epoch.
    steps_per_execution: training steps per call of the compiled train function; progress and
      batch-level callbacks see every n-th step.
    generator_learning_rate: the generator's Adam learning rate at the start; None (the default)
      takes the architecture's, GENERATOR_LEARNING_RATES.
    discriminator_learning_rate: the discriminator's Adam learning rate at the start; None (the
      default) takes the architecture's, DISCRIMINATOR_LEARNING_RATES.
    beta_1: Adam's beta_1, for both optimizers.
    lr_decay: both learning rates decay exponentially to this fraction of their start by the
      last step.
    label_smoothing: one-sided label smoothing of the real targets; 0 disables it.
    discriminator_dropout: the DCGAN discriminator's dropout rate before its logit; 0 disables
      it. The dense discriminator has no dropout.
    r1_gamma: the weight of a penalty on the discriminator's squared gradient at the real images
      (R1, Mescheder et al. 2018); 0 (the default) disables it.
    ema_horizon: the exported generator is an exponential moving average of its weights, over
      about this fraction of the training steps (the average's time constant); 0 exports the
      last weights.
    minibatch_stddev: whether the discriminator's last hidden features get one more: the
      standard deviation of the global batch, averaged over the features (ProGAN's minibatch
      standard deviation), which lets it tell a collapsed generator from the data; None (the
      default) takes the architecture's, MINIBATCH_STDDEV.
  """
  architecture: str = AUTO
  latent_dim: int = 64
  batch_size: int = 64
  # None takes the architecture's budget, EPOCHS. In 10-epoch trials on Fashion-MNIST, a
  # generator learning rate of 2e-4, a decay to 10%, or no label smoothing did no better.
  epochs: Optional[int] = None
  steps_per_epoch: int = 200
  # Keras pays a per-call cost in Python (callbacks, logs) that a small GAN's step does not hide:
  # on 2 CPUs the dense GAN ran at 0.74-0.92 of a hand-written loop's speed with 1, 1.15-1.33
  # with 10 (gan_throughput.py). Epochs are unchanged.
  steps_per_execution: int = 10
  generator_learning_rate: Optional[float] = None
  discriminator_learning_rate: Optional[float] = None
  beta_1: float = 0.5
  lr_decay: float = 0.5
  label_smoothing: float = 0.1
  discriminator_dropout: float = 0.3
  r1_gamma: float = 0.0
  # Averaging the generator's weights (Yazici et al., "The Unusual Effectiveness of Averaging in
  # GAN Training", ICLR 2019) raised the generated/real classifier score on digits from 78.3% to
  # 80.3% by the classifier judge and from 78.5% to 80.3% by an independent SVC, means of 3
  # seeds (benchmarks/gan_quality.py); a horizon of 0.1 gave 80.3% and 80.0%. On Fashion-MNIST
  # (the DCGAN at 80 epochs, seed 2, one run judged at each horizon: gan_quality.py --horizons)
  # it was 84.9% at 0.01, 85.0% at 0.02, 85.3% at 0.05, 85.5% at 0.1 and at 0.25, and 85.2% for
  # the last weights: no shorter horizon did better.
  ema_horizon: float = 0.25
  minibatch_stddev: Optional[bool] = None

  def __post_init__(self):
    check(self.architecture in (AUTO, *GAN_ARCHITECTURES), 'gan.architecture',
          f'unknown architecture {self.architecture!r}',
          f'pass --gan.architecture with one of {", ".join((AUTO, *GAN_ARCHITECTURES))}')
    for name in ('latent_dim', 'batch_size', 'steps_per_epoch', 'steps_per_execution'):
      check_positive(getattr(self, name), f'gan.{name}')
    check_positive(self.epochs, 'gan.epochs', allow_none=True)
    for name in ('generator_learning_rate', 'discriminator_learning_rate'):
      if getattr(self, name) is None:
        continue
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
    check(isinstance(self.discriminator_dropout, (int, float))
          and 0.0 <= self.discriminator_dropout < 1.0, 'gan.discriminator_dropout',
          f'must be within [0, 1), got {self.discriminator_dropout!r}',
          'pass --gan.discriminator_dropout 0.3, or 0 to disable it')
    check(isinstance(self.r1_gamma, (int, float)) and not isinstance(self.r1_gamma, bool)
          and self.r1_gamma >= 0.0, 'gan.r1_gamma', f'must be >= 0, got {self.r1_gamma!r}',
          'pass --gan.r1_gamma with a value such as 1, or 0 to disable it')
    check(isinstance(self.ema_horizon, (int, float)) and 0.0 <= self.ema_horizon <= 1.0,
          'gan.ema_horizon', f'must be within [0, 1], got {self.ema_horizon!r}',
          'pass --gan.ema_horizon 0.1, or 0 to export the last weights')
    check(self.minibatch_stddev is None or isinstance(self.minibatch_stddev, bool),
          'gan.minibatch_stddev', f'must be true or false, got {self.minibatch_stddev!r}',
          'pass --gan.minibatch_stddev true or false')

  def generator_learning_rate_for(self, architecture: str) -> float:
    """The generator's learning rate: the one set, or the resolved architecture's default."""
    if self.generator_learning_rate is not None:
      return float(self.generator_learning_rate)
    return GENERATOR_LEARNING_RATES[architecture]

  def discriminator_learning_rate_for(self, architecture: str) -> float:
    """The discriminator's learning rate: the one set, or the resolved architecture's default."""
    if self.discriminator_learning_rate is not None:
      return float(self.discriminator_learning_rate)
    return DISCRIMINATOR_LEARNING_RATES[architecture]

  def minibatch_stddev_for(self, architecture: str) -> bool:
    """Whether the discriminator gets the batch's standard deviation: as set, or the default."""
    if self.minibatch_stddev is not None:
      return self.minibatch_stddev
    return MINIBATCH_STDDEV[architecture]

  def epochs_for(self, architecture: str) -> int:
    """The number of epochs: the one set, or the resolved architecture's default."""
    if self.epochs is not None:
      return self.epochs
    return EPOCHS[architecture]

  def ema_momentum(self, architecture: str) -> float:
    """The generator optimizer's EMA momentum: a time constant of ema_horizon x all steps."""
    steps = self.epochs_for(architecture) * self.steps_per_epoch
    return 1.0 - 1.0 / max(1.0, self.ema_horizon * steps)
