"""The classifier's Trainer `run_fn`: a thin adapter from FnArgs to `train` and `export`."""

from typing import Sequence

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



def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the MLP classifier and exports it with its serving signatures."""
  custom = fn_args.custom_config
  config = hparams.ClassifierConfig(**{
      **custom['classifier'], 'hidden_units': tuple(custom['classifier']['hidden_units'])})
  image_shape = tuple(custom[preprocessing.IMAGE_SHAPE])
  class_names = custom['class_names']
  keras.utils.set_random_seed(custom['seed'])

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  steps_mode = config.train_steps is not None
  train_ds = inputs.make_dataset(fn_args.train_files, fn_args.data_accessor,
                                 tf_transform_output, config.batch_size,
                                 num_epochs=None if steps_mode else 1, seed=custom['seed'])
  eval_ds = inputs.make_dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                                config.batch_size, num_epochs=1, shuffle=False)
  model = train(config, image_shape, len(class_names), train_ds, eval_ds,
                log_dir=fn_args.model_run_dir, eval_steps=fn_args.eval_steps)
  export(model, tf_transform_output, class_names, fn_args.serving_model_dir)


def train(config: hparams.ClassifierConfig, image_shape, num_classes: int,
          train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, log_dir: str,
          eval_steps=None) -> keras.Model:
  """Builds, compiles and fits the classifier; returns the trained model."""
  model = model_lib.build_classifier(image_shape, num_classes, config.hidden_units,
                                     config.activation, config.dropout, config.input_noise)
  model_lib.compile_classifier(model, config.optimizer, config.learning_rate)
  model.summary(print_fn=logging.info)
  if config.train_steps is not None:
    fit_args = dict(epochs=1, steps_per_epoch=config.train_steps)
  else:
    fit_args = dict(epochs=config.epochs)
  model.fit(train_ds, validation_data=eval_ds, validation_steps=eval_steps, verbose=0,
            callbacks=[keras.callbacks.TensorBoard(log_dir=log_dir),
                       progress.EpochSummary(fit_args['epochs'])], **fit_args)
  return model


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
