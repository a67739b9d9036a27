"""The classifier's Trainer `run_fn`: a thin adapter from FnArgs to `train` and `export`."""

import math
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import absl.logging as logging
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx.components.trainer import fn_args_utils

from ganpipe.models import features
from ganpipe.models import hparams
from ganpipe.models import preprocessing
from ganpipe.models import signatures
from ganpipe.models.classifier import model as model_lib
from ganpipe.models.training import inputs
from ganpipe.models.training import progress

# Examples per batch when a split is read into memory: large, to keep the per-batch cost small.
READ_BATCH = 1024


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the MLP classifier and exports it with its serving signatures."""
  custom = fn_args.custom_config
  config = hparams.ClassifierConfig(**{
      **custom['classifier'], 'hidden_units': tuple(custom['classifier']['hidden_units'])})
  image_shape = tuple(custom[preprocessing.IMAGE_SHAPE])
  class_names = custom['class_names']
  keras.utils.set_random_seed(custom['seed'])

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  data = training_datasets(config, fn_args, tf_transform_output, custom['seed'])
  model = train(config, image_shape, len(class_names), data.train, data.eval,
                log_dir=fn_args.model_run_dir, eval_steps=fn_args.eval_steps)
  export(model, tf_transform_output, class_names, fn_args.serving_model_dir)


class TrainingData(NamedTuple):
  train: tf.data.Dataset
  eval: tf.data.Dataset
  in_memory: Tuple[str, ...]  # the splits held in memory: `train`, `eval`, both or neither


def training_datasets(config: hparams.ClassifierConfig, fn_args: fn_args_utils.FnArgs,
                      tf_transform_output: tft.TFTransformOutput, seed: int) -> TrainingData:
  """The train and eval datasets: held in memory when they fit `config.cache_mb`, else streamed.

  Streaming parses every transformed example again on every epoch and evaluation (on
  Fashion-MNIST, 70,000 examples of 784 floats, 100 times over); in memory they are read once.
  The train split is read first and the eval split gets what budget it leaves.
  """
  steps_mode = config.train_steps is not None
  budget = config.cache_mb * 2**20
  splits, in_memory = {}, []
  for name, files, train_split in (('train', fn_args.train_files, True),
                                   ('eval', fn_args.eval_files, False)):
    epochs = None if steps_mode and train_split else 1
    arrays = inputs.read_in_memory(
        inputs.make_dataset(files, fn_args.data_accessor, tf_transform_output,
                            READ_BATCH, num_epochs=1, shuffle=False), budget)
    if arrays is None:
      logging.info('%s split: streamed from its files (over the %d MB cache)', name,
                   config.cache_mb)
      splits[name] = inputs.make_dataset(files, fn_args.data_accessor, tf_transform_output,
                                         config.batch_size, num_epochs=epochs,
                                         shuffle=train_split, seed=seed if train_split else None)
      continue
    budget -= arrays[0].nbytes + arrays[1].nbytes
    in_memory.append(name)
    logging.info('%s split: %d examples held in memory (%.1f MB)', name, len(arrays[1]),
                 (arrays[0].nbytes + arrays[1].nbytes) / 2**20)
    splits[name] = inputs.array_dataset(*arrays, config.batch_size, num_epochs=epochs,
                                        shuffle=train_split, seed=seed if train_split else None)
  return TrainingData(splits['train'], splits['eval'], tuple(in_memory))


def train(config: hparams.ClassifierConfig, image_shape, num_classes: int,
          train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, log_dir: Optional[str],
          eval_steps=None) -> keras.Model:
  """Builds, compiles and fits the classifier; returns the trained model.

  With `config.early_stopping_patience`, training stops once the eval loss has not improved for
  that many epochs and the model keeps the weights of its best epoch, not its last.
  """
  model = model_lib.build_classifier(image_shape, num_classes, config.hidden_units,
                                     config.activation, config.dropout, config.input_noise,
                                     config.batch_norm)
  model_lib.compile_classifier(model, config.optimizer, config.learning_rate)
  model.summary(print_fn=logging.info)
  if config.train_steps is not None:
    fit_args = dict(epochs=1, steps_per_epoch=config.train_steps)
  else:
    fit_args = dict(epochs=config.epochs)
  callbacks = [progress.EpochSummary(fit_args['epochs'])]
  if log_dir:
    callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
  if config.lr_schedule == hparams.COSINE and fit_args['epochs'] > 1:
    callbacks.append(keras.callbacks.LearningRateScheduler(
        cosine_schedule(config.learning_rate, fit_args['epochs'])))
  if config.early_stopping_patience:
    callbacks.append(keras.callbacks.EarlyStopping(
        'val_loss', patience=config.early_stopping_patience, restore_best_weights=True))
  model.fit(inputs.for_fit(train_ds), validation_data=inputs.for_fit(eval_ds),
            validation_steps=eval_steps, verbose=0,
            callbacks=callbacks, **fit_args)
  return model


def cosine_schedule(learning_rate: float, epochs: int) -> Callable[[int], float]:
  """Epoch -> learning rate, from `learning_rate` down a half cosine to near 0 at the last epoch.

  By epoch rather than by step, so it needs no count of the examples, which a streamed split
  does not give before it is read.
  """
  def rate(epoch: int, _=None) -> float:
    return learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
  return rate


def export(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
           class_names: Sequence[str], export_dir: str) -> None:
  """Saves a SavedModel whose signatures take raw inputs and run Transform inside.

  Signatures:
    serving_default: `images`, [batch] encoded image bytes (PNG, JPEG, BMP, GIF).
    serving_examples: `examples`, [batch] serialized tf.Example with an `image` feature.
  Both return `probabilities` [batch, classes] float32, `class_ids` [batch] int64 and
  `class_names` [batch] string.
    image_features: `images`, [batch, h, w, c] float32 pixels in [0, 1] (Transform's output)
      -> `features` [batch, units], the last hidden layer, and `probabilities`. The GAN's
      metrics live in this feature space.
  """
  model.tft_layer = tf_transform_output.transform_features_layer()
  names = tf.constant(list(class_names))
  image_spec = {features.IMAGE_KEY:
                tf_transform_output.raw_feature_spec()[features.IMAGE_KEY]}

  def predict(raw_images):
    transformed = model.tft_layer({features.IMAGE_KEY: raw_images})
    probabilities = model(transformed[features.IMAGE_KEY], training=False)
    class_ids = tf.argmax(probabilities, axis=1)
    return {'probabilities': probabilities, 'class_ids': class_ids,
            'class_names': tf.gather(names, class_ids)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='images')])
  def serve_images(images):
    return predict(tf.reshape(images, [-1, 1]))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(examples):
    parsed = tf.io.parse_example(examples, image_spec)
    return predict(parsed[features.IMAGE_KEY])

  model.save(export_dir, save_format='tf', signatures={
      signatures.CLASSIFY_IMAGES: serve_images,
      signatures.CLASSIFY_EXAMPLES: serve_examples,
      signatures.IMAGE_FEATURES: features_signature(model),
  })


def features_signature(model: keras.Model) -> tf.types.experimental.GenericFunction:
  """[batch, h, w, c] pixels in [0, 1] -> `features` (the last hidden layer), `probabilities`."""
  embedding = keras.Model(model.input, [model.get_layer(model_lib.FEATURES_LAYER).output,
                                         model.output])

  @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32,
                                              name='images')])
  def image_features(images):
    hidden, probabilities = embedding(images, training=False)
    return {'features': hidden, 'probabilities': probabilities}

  return image_features
