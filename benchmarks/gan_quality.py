"""Benchmark: the GAN's generated-over-real classifier score, by two judges, over seeds.

Trains the GAN with the Trainer's own code (ganpipe/models/gan/training.py, the default GanConfig
unless --set changes it) on the pipeline's train split, held in memory as the Trainer would
stream it, once per seed. Each generator is then judged twice:

  classifier: the pipeline's classifier at its default configuration (no input noise), trained
      once per benchmark run with --judge-seed on the same train split. Its score of generated
      images over its score of the eval split's real images is the figure the GeneratorEvaluator
      reports; the Fréchet distance in its last hidden layer, over the real train-vs-eval one,
      is the GeneratorEvaluator's other figure. Its configuration is printed with the figures:
      a change to the classifier changes this judge, and the score with it, whatever the
      generator does.
  independent: a model the pipeline never uses, fixed here: on digits an RBF SVC (probability
      estimates, Platt scaling) trained on half of the digits (a stratified 50/50 split, seed 0)
      and judged against the held-out half; on Fashion-MNIST a multinomial logistic regression on
      the raw pixels, trained on the 60,000 train images and judged against the 10,000 t10k.

The score is exp(E_x KL(p(y|x) || p(y))) (generator_evaluator/metrics.py) over as many generated
images as the judge's real reference has. With gan.ema_horizon above 0 (the default), the same run
is also judged with the generator's last weights instead of their average ("unaveraged"). With
--horizons, it is judged once more for each other gan.ema_horizon listed, from averages this
script keeps of the weights it reads every gan.steps_per_execution steps (the exported average is
updated every step): a paired comparison from one training run.

  .venv/bin/python benchmarks/gan_quality.py --dataset digits --seeds 1,2,3
      [--set gan.epochs=40] [--horizons 0.05,0.1] [--judge-seed 0] [--out benchmarks/results]

With --generator DIR (repeatable), nothing is trained: each exported generator (a SavedModel
with the `generate` signature, such as a pushed version folder `outputs/serving/generator/N`)
is judged as it is: its `serving_default` signature turns the same noise that a trained run's
generator gets (the first of --seeds as the seed) into images, in batches the export accepts.

Writes gan_quality_<dataset>.json and .md. Goal (issue 27): >= 0.85 by the classifier judge, for
every seed.
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganpipe  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from sklearn import datasets, linear_model, model_selection, svm  # noqa: E402

from benchmarks import classifier_training  # noqa: E402
from ganpipe.components.generator_evaluator import metrics  # noqa: E402
from ganpipe.models import hparams  # noqa: E402
from ganpipe.models import signatures  # noqa: E402
from ganpipe.models.classifier import model as classifier_model  # noqa: E402
from ganpipe.models.classifier import training as classifier_lib  # noqa: E402
from ganpipe.models.gan import training as gan_lib  # noqa: E402
from ganpipe.models.training import inputs  # noqa: E402
from ganpipe.models.training import strategy as strategy_lib  # noqa: E402
from ganpipe.pipeline import config as config_lib  # noqa: E402

GOAL = 0.85


class ClassifierJudge:
  """The pipeline's default classifier, trained once on the train split."""

  def __init__(self, x_train, y_train, x_eval, y_eval, seed):
    self.config = config_lib.get_config().classifier
    keras.utils.set_random_seed(seed)
    train_ds = inputs.array_dataset(x_train, y_train, self.config.batch_size, seed=seed)
    eval_ds = inputs.array_dataset(x_eval, y_eval, self.config.batch_size, shuffle=False)
    self.model = classifier_lib.train(self.config, x_train.shape[1:], 10, train_ds, eval_ds,
                                      log_dir=None)
    self.accuracy = float(self.model.evaluate(x_eval, y_eval, batch_size=1024, verbose=0)[1])
    self.reference = x_eval
    # The GeneratorEvaluator's other figure: the Fréchet distance in the last hidden layer, of
    # generated images and of real train images, each against the real eval images.
    self._features = keras.Model(self.model.input,
                                 self.model.get_layer(classifier_model.FEATURES_LAYER).output)
    self.real_features = self.features(x_eval)
    self.real_distance = metrics.frechet_classifier_distance(
        self.features(x_train[np.random.default_rng(seed).permutation(len(x_train))[
            :len(x_eval)]]), self.real_features)

  def probabilities(self, pixels):
    return self.model.predict(pixels, batch_size=1024, verbose=0)

  def features(self, pixels):
    return self._features.predict(pixels, batch_size=1024, verbose=0)


class IndependentJudge:
  """An RBF SVC on half of the digits, or a logistic regression on Fashion-MNIST's pixels."""

  def __init__(self, dataset, x_train, y_train, x_eval, y_eval):
    if dataset == 'digits':
      digits = datasets.load_digits()
      # sklearn's 0..16 intensities, as the pipeline's 8-bit pixels / 255 give them back.
      pixels = np.round(digits.images * (255.0 / 16.0)) / 255.0
      fit_x, ref_x, fit_y, ref_y = model_selection.train_test_split(
          pixels.reshape(len(pixels), -1), digits.target, test_size=0.5,
          stratify=digits.target, random_state=0)
      self.name = 'RBF SVC (gamma=scale, C=10), trained on half of the digits'
      self.model = svm.SVC(C=10.0, gamma='scale', probability=True, random_state=0)
    else:
      fit_x, fit_y = x_train.reshape(len(x_train), -1), y_train
      ref_x, ref_y = x_eval.reshape(len(x_eval), -1), y_eval
      self.name = 'multinomial logistic regression on pixels, trained on the train split'
      self.model = linear_model.LogisticRegression(max_iter=200, C=1.0)
    self.model.fit(fit_x, fit_y)
    self.accuracy = float(self.model.score(ref_x, ref_y))
    self.reference = ref_x

  def probabilities(self, pixels):
    return self.model.predict_proba(pixels.reshape(len(pixels), -1))


class LastWeights(keras.callbacks.Callback):
  """The generator's weights as the last step left them, before `train` writes the average."""

  def on_train_end(self, logs=None):
    self.weights = self.model.generator.get_weights()


class Averages(keras.callbacks.Callback):
  """Exponential moving averages of the generator's trainable weights, one per horizon.

  The average the generator's optimizer keeps (tf_keras/src/optimizers/optimizer.py,
  _update_model_variables_moving_average) starts at the initial weights and moves by
  `momentum` every step. Callbacks see the weights every steps_per_execution steps, so these
  move by momentum ** k over the k steps since the last look, as if the weights had held still.
  """

  def __init__(self, config, horizons, architecture):
    super().__init__()
    self._momenta = {horizon: dataclasses.replace(config, ema_horizon=horizon).ema_momentum(
        architecture) for horizon in horizons}

  def on_train_begin(self, logs=None):
    self.averages = {}
    if not self._momenta:  # nothing to average: no reads of the weights at all
      return
    optimizer = self.model.g_optimizer
    self._iterations = getattr(optimizer, 'inner_optimizer', optimizer).iterations
    self._step = int(self._iterations.numpy())
    weights = [v.numpy() for v in self.model.generator.trainable_variables]
    self.averages = {horizon: [w.copy() for w in weights] for horizon in self._momenta}

  def on_train_batch_end(self, batch, logs=None):
    if not self.averages:
      return
    step = int(self._iterations.numpy())
    steps, self._step = step - self._step, step
    if steps <= 0:
      return
    weights = [v.numpy() for v in self.model.generator.trainable_variables]
    for horizon, average in self.averages.items():
      keep = self._momenta[horizon] ** steps
      for mean, now in zip(average, weights):
        mean *= keep
        mean += (1.0 - keep) * now

  def generators(self, generator, last_weights, latent_dim):
    """A copy of `generator` per horizon: its average, batch normalisation computed again."""
    copies = {}
    for horizon, average in self.averages.items():
      copy = keras.models.clone_model(generator)
      copy.set_weights(last_weights)
      for variable, mean in zip(copy.trainable_variables, average):
        variable.assign(mean)
      gan_lib.recalibrate_batch_norm(copy, latent_dim)
      copies[horizon] = copy
    return copies


def train_generator(config, x_train, seed, run_dir, horizons=()):
  """The exported generator; with an average, the same run's last weights; with `horizons`,
  the same run's generator averaged over each of them."""
  keras.utils.set_random_seed(seed)
  setup = strategy_lib.choose_training_setup()
  dataset = (tf.data.Dataset.from_tensor_slices(x_train * 2.0 - 1.0)
             .shuffle(len(x_train), seed=seed).repeat().batch(config.batch_size)
             .prefetch(tf.data.AUTOTUNE))
  last = LastWeights()
  averages = Averages(config, horizons, resolved(config, x_train.shape[1:])['architecture'])
  gan = gan_lib.train(config, x_train.shape[1:], dataset, setup, run_dir=run_dir, verbose=0,
                      callbacks=[last, averages])
  others = averages.generators(gan.generator, last.weights, config.latent_dim)
  if not config.ema_horizon:
    return gan.generator, None, others
  unaveraged = keras.models.clone_model(gan.generator)
  unaveraged.set_weights(last.weights)
  return gan.generator, unaveraged, others


def generated(generator, latent_dim, count, seed):
  noise = tf.random.stateless_normal([count, latent_dim], seed=[seed, 7])
  return gan_lib.to_unit_range(generator.predict(noise, batch_size=1024, verbose=0))


def exported_generated(export_dir, count, seed):
  """`generated`'s images from an exported generator: the same noise, through its signature."""
  serve = tf.saved_model.load(export_dir).signatures[signatures.GENERATE_FROM_NOISE]
  latent_dim = serve.structured_input_signature[1]['noise'].shape[-1]
  noise = tf.random.stateless_normal([count, latent_dim], seed=[seed, 7])
  return np.concatenate([serve(noise=noise[start:start + signatures.MAX_GENERATED_IMAGES])[
      'images'].numpy() for start in range(0, count, signatures.MAX_GENERATED_IMAGES)])


def breakdown(probabilities):
  """The score's two parts: log score = class entropy - prediction entropy (in nats).

  The class entropy is that of the mean prediction, highest when the images spread evenly over
  the classes; the prediction entropy is the mean entropy of each image's prediction, lowest when
  the judge is sure of each. Also the shares of images predicted as the rarest and the commonest
  class.
  """
  p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
  marginal = p.mean(axis=0)
  shares = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)
  return {'class_entropy': round(float(-np.sum(marginal * np.log(marginal))), 4),
          'prediction_entropy': round(float(-np.mean(np.sum(p * np.log(p), axis=1))), 4),
          'rarest_class_share': round(float(shares.min()), 4),
          'commonest_class_share': round(float(shares.max()), 4)}


def score(judge, generator, latent_dim, seed):
  return score_images(judge, generated(generator, latent_dim, len(judge.reference), seed))


def score_images(judge, fake):
  """The judge's figures for generated images in [0, 1] against its real reference."""
  real = judge.reference.reshape((len(judge.reference),) + fake.shape[1:])
  fake_probabilities, real_probabilities = judge.probabilities(fake), judge.probabilities(real)
  fake_score = metrics.classifier_score(fake_probabilities)
  real_score = metrics.classifier_score(real_probabilities)
  figures = {'generated_score': round(fake_score, 3), 'real_score': round(real_score, 3),
             'ratio': round(fake_score / real_score, 4), 'images': len(real),
             'generated': breakdown(fake_probabilities), 'real': breakdown(real_probabilities)}
  if isinstance(judge, ClassifierJudge):
    distance = metrics.frechet_classifier_distance(judge.features(fake), judge.real_features)
    figures.update(distance=round(distance, 3), real_distance=round(judge.real_distance, 3),
                   distance_ratio=round(distance / judge.real_distance, 2))
  return figures


def resolved(config, image_shape):
  """The settings that default by architecture, as the Trainer resolves them."""
  architecture = hparams.resolve_architecture(config.architecture, image_shape)
  return {'architecture': architecture, 'epochs': config.epochs_for(architecture),
          'generator_learning_rate': config.generator_learning_rate_for(architecture),
          'discriminator_learning_rate': config.discriminator_learning_rate_for(architecture),
          'minibatch_stddev': config.minibatch_stddev_for(architecture)}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', choices=sorted(classifier_training.GOALS), default='digits')
  parser.add_argument('--seeds', default='1,2,3')
  parser.add_argument('--judge-seed', type=int, default=0)
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='a GanConfig field, e.g. gan.epochs=10')
  parser.add_argument('--horizons', default='', metavar='H,H,...',
                      help='also judge each run averaged over these gan.ema_horizon values')
  parser.add_argument('--generator', action='append', default=[], metavar='DIR',
                      help='judge this exported generator instead of training one; repeatable')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  missing = [path for path in args.generator
             if not os.path.isfile(os.path.join(path, 'saved_model.pb'))]
  if missing:
    parser.error(f'no saved_model.pb in {", ".join(missing)}: --generator takes an exported '
                 'generator\'s SavedModel folder, such as outputs/serving/generator/1')
  config = classifier_training.config_section(args.set, 'gan')
  seeds = [int(s) for s in args.seeds.split(',')]
  try:
    horizons = [float(h) for h in args.horizons.split(',') if h.strip()]
    for horizon in horizons:
      dataclasses.replace(config, ema_horizon=horizon)  # GanConfig's own check of the value
  except (ValueError, hparams.ConfigError) as error:
    parser.error(f'--horizons {args.horizons}: {error}')
  if horizons and args.generator:
    parser.error('--horizons judges averages of a training run; --generator trains nothing')

  (x_train, y_train), (x_eval, y_eval) = classifier_training.load_split(args.dataset)
  started = time.monotonic()
  judges = {'classifier': ClassifierJudge(x_train, y_train, x_eval, y_eval, args.judge_seed),
            'independent': IndependentJudge(args.dataset, x_train, y_train, x_eval, y_eval)}
  judge_seconds = time.monotonic() - started
  runs = []
  for path in args.generator:
    run = {'generator': os.path.abspath(path), 'seed': seeds[0]}
    for name, judge in judges.items():  # as many images as the judge's real reference holds
      count = len(judge.reference)
      run[name] = score_images(judge, exported_generated(path, count, seeds[0]))
    runs.append(run)
    print(json.dumps(run), flush=True)
  for seed in seeds if not args.generator else ():
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='ganpipe-gan-quality-') as run_dir:
      generator, unaveraged, others = train_generator(config, x_train, seed, run_dir,
                                                      horizons)
    seconds = time.monotonic() - started
    run = {'seed': seed, 'train_seconds': round(seconds, 1),
           'load_average_1m': round(os.getloadavg()[0], 2)}
    for name, judge in judges.items():
      run[name] = score(judge, generator, config.latent_dim, seed)
      if unaveraged is not None:  # the same run without the average: a paired comparison
        run[name]['last_weights'] = score(judge, unaveraged, config.latent_dim, seed)
      if others:
        run[name]['horizons'] = {str(horizon): score(judge, other, config.latent_dim, seed)
                                 for horizon, other in others.items()}
    runs.append(run)
    print(json.dumps(run), flush=True)

  summary = {name: {'min_ratio': min(r[name]['ratio'] for r in runs),
                    'median_ratio': statistics.median(r[name]['ratio'] for r in runs)}
             for name in judges}
  result = {
      'benchmark': 'gan_quality', 'dataset': args.dataset,
      # Judged generators were trained elsewhere, with settings this run does not know.
      'gan_config': None if args.generator else dataclasses.asdict(config),
      'gan_config_resolved': None if args.generator else resolved(config, x_train.shape[1:]),
      'judges': {
          'classifier': {'config': dataclasses.asdict(judges["classifier"].config),
                         'seed': args.judge_seed,
                         'eval_accuracy': round(judges['classifier'].accuracy, 4)},
          'independent': {'model': judges['independent'].name,
                          'reference_accuracy': round(judges['independent'].accuracy, 4)},
          'train_seconds': round(judge_seconds, 1)},
      'runs': runs, 'summary': summary, 'goal': GOAL,
      'meets_goal': summary['classifier']['min_ratio'] >= GOAL,
      'cpus': os.cpu_count(), 'python': platform.python_version(), 'tensorflow': tf.__version__,
  }
  os.makedirs(args.out, exist_ok=True)
  stem = os.path.join(args.out, f'gan_quality_{args.dataset}')
  with open(stem + '.json', 'w') as f:
    json.dump(result, f, indent=2, default=str)
  with open(stem + '.md', 'w') as f:
    f.write(f'# GAN quality on {args.dataset}: generated / real classifier score\n\n'
            f'Classifier judge: eval accuracy {result["judges"]["classifier"]["eval_accuracy"]}'
            f'; independent judge: {judges["independent"].name}, accuracy '
            f'{result["judges"]["independent"]["reference_accuracy"]}.\n\n'
            '| seed | classifier judge | independent judge | GAN training (s) |\n'
            '|---|---|---|---|\n')

    def cell(figures):
      last = figures.get('last_weights')
      # Two decimals: 0.8496 is 85.0% at one, which reads as the goal met.
      return f'{figures["ratio"]:.2%}' + (f' ({last["ratio"]:.2%} unaveraged)' if last else '')
    for run in runs:
      f.write(f'| {run.get("generator", run["seed"])} | {cell(run["classifier"])} | '
              f'{cell(run["independent"])} | {run.get("train_seconds", "not trained here")} |\n')
    for run in runs:
      if 'horizons' in run['classifier']:
        f.write(f'\nSeed {run["seed"]}, the same run averaged over other gan.ema_horizon values '
                '(classifier judge / independent judge): ' + '; '.join(
                    f'{horizon}: {figures["ratio"]:.2%} / '
                    f'{run["independent"]["horizons"][horizon]["ratio"]:.2%}'
                    for horizon, figures in run['classifier']['horizons'].items()) + '.\n')
  print(json.dumps({'summary': summary, 'judges': result['judges']}, indent=2, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
