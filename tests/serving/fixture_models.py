"""Small SavedModels for the serving tests, and a CLI that writes them with a models.config.

`python -m tests.serving.fixture_models DIR` writes the conformance models into DIR and a
ModelServerConfig text proto, DIR/models.config, with absolute base paths, so that a real
TensorFlow Serving can be pointed at them:

  tensorflow_model_server --model_config_file=DIR/models.config --port=8500 --rest_api_port=8501

The models are built like TF Serving's own test models: TF1 graphs written with
`tf.compat.v1.saved_model.Builder`, so that the classify signature keeps its method name and its
serialized-tf.Example input. Nothing is trained.
"""

import argparse
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from google.protobuf import text_format
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

HALF_PLUS_TWO = 'half_plus_two'
STRING_LENGTH = 'string_length'
COLOUR = 'colour'
COLOURS = ('red', 'green', 'blue')
PREDICT_SIGNATURE = 'serving_default'
CLASSIFY_SIGNATURE = 'classify_x_to_y'
REGRESS_SIGNATURE = 'regress_x_to_y'
ADD_ONE_SIGNATURE = 'add_one'
ECHO_SIGNATURE = 'echo'
# A classifier as TF2's tf.saved_model.save writes one: method_name `predict`.
PREDICT_METHOD_CLASSIFY_SIGNATURE = 'classify_as_predict'
STABLE_LABEL = 'stable'
CANARY_LABEL = 'canary'
CONFIG_FILE = 'models.config'
WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')

BuildFn = Callable[[str], None]


def offset_for_version(version: int) -> float:
  """The constant `b` of half_plus_two version `version`: y = 0.5 * x + b.

  Each version gets its own constant so that a response reveals which version computed it.
  """
  return 1.0 + version


def half_plus_two_y(version: int, x: float) -> float:
  """What half_plus_two version `version` answers for input x."""
  return 0.5 * x + offset_for_version(version)


def _save(export_dir: str, build_graph: Callable[[], Dict[str, Any]]) -> None:
  """Builds a TF1 graph with `build_graph` (which returns the signature map) and saves it."""
  with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
    signature_def_map = build_graph()
    session.run(tf.compat.v1.global_variables_initializer())
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING],
                                         signature_def_map=signature_def_map,
                                         strip_default_attrs=True)
    builder.save()


def build_half_plus_two(export_dir: str, version: int) -> None:
  """Writes half_plus_two: y = 0.5 * x + offset_for_version(version).

  Signatures: `serving_default` (predict) x float32 [None, 1] -> y, x_squared; and three taking
  serialized tf.Examples with a float feature `x` on input key `inputs`: `classify_x_to_y`
  (classify) answering `scores` = y, `regress_x_to_y` (regress) answering `outputs` = y, and
  `classify_as_predict`, the first with method_name `predict`, as TF2 writes classifiers. y uses
  a [1, 1] matmul, so an x of the wrong shape fails inside TensorFlow too, as it would on a real
  TF Serving, which does not check feed shapes.
  """

  def graph():
    a = tf.compat.v1.Variable([[0.5]], dtype=tf.float32, name='a')
    b = tf.compat.v1.Variable(offset_for_version(version), dtype=tf.float32, name='b')
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, 1], name='x')
    y = tf.add(tf.matmul(x, a), b, name='y')
    x_squared = tf.square(x, name='x_squared')
    serialized = tf.compat.v1.placeholder(tf.string, shape=[None], name='tf_example')
    features = tf.io.parse_example(serialized, {'x': tf.io.FixedLenFeature([1], tf.float32)})
    scores = tf.add(tf.matmul(features['x'], a), b, name='scores')
    return {
        PREDICT_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'x': x}, outputs={'y': y, 'x_squared': x_squared}),
        CLASSIFY_SIGNATURE: tf.compat.v1.saved_model.classification_signature_def(
            examples=serialized, classes=None, scores=scores),
        REGRESS_SIGNATURE: tf.compat.v1.saved_model.regression_signature_def(
            examples=serialized, predictions=scores),
        PREDICT_METHOD_CLASSIFY_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'inputs': serialized}, outputs={'scores': scores}),
    }

  _save(export_dir, graph)


def build_string_length(export_dir: str) -> None:
  """Writes a bytes model: text string [None] -> length int32 (bytes), echo_bytes (the input).
  Two more signatures: ECHO_SIGNATURE, text -> echo (the input), and ADD_ONE_SIGNATURE, n int64
  [None] -> n_plus_one.

  The `_bytes` suffix makes TF Serving's REST API answer that output as {"b64": ...}; `echo`
  goes into the JSON as its bytes are.
  """

  def graph():
    text = tf.compat.v1.placeholder(tf.string, shape=[None], name='text')
    length = tf.strings.length(text, unit='BYTE', name='length')
    echo_bytes = tf.identity(text, name='echo_bytes')
    echo = tf.identity(text, name='echo')
    n = tf.compat.v1.placeholder(tf.int64, shape=[None], name='n')
    n_plus_one = tf.add(n, tf.constant(1, tf.int64), name='n_plus_one')
    return {
        PREDICT_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'text': text}, outputs={'length': length, 'echo_bytes': echo_bytes}),
        ECHO_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'text': text}, outputs={'echo': echo}),
        ADD_ONE_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'n': n}, outputs={'n_plus_one': n_plus_one}),
    }

  _save(export_dir, graph)


def build_colour(export_dir: str) -> None:
  """Writes an image model with the serving contract of ganpipe's classifier (and ResNet's JPEG
  one): `images`, DT_STRING [None] of encoded images, reshaped to [-1] in the graph, so a scalar
  image runs as a batch of one, as TensorFlow lets it. `scores` [batch, 3]: the softmax of 10x the
  mean red, green and blue, so the dominant colour of the image wins (COLOURS).
  """

  def graph():
    images = tf.compat.v1.placeholder(tf.string, shape=[None], name='images')

    def mean_colour(data):
      pixels = tf.io.decode_image(data, channels=3, dtype=tf.float32, expand_animations=False)
      return tf.reduce_mean(pixels, axis=[0, 1])

    means = tf.map_fn(mean_colour, tf.reshape(images, [-1]),
                      fn_output_signature=tf.TensorSpec([3], tf.float32))
    scores = tf.nn.softmax(10.0 * means, name='scores')
    return {
        PREDICT_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'images': images}, outputs={'scores': scores}),
    }

  _save(export_dir, graph)


def _sleep_then(x: tf.Tensor, seconds: float) -> tf.Tensor:
  """Returns x after `seconds` of sleeping, with core ops only (SleepDataset).

  A tf.py_function would not survive saving; SleepDataset is a core kernel that a real
  tensorflow_model_server has too. It sleeps on each GetNext, and a single-element read makes
  two (the element and the end of sequence), hence half the delay each.
  """
  dataset = tf.data.experimental.to_variant(tf.data.Dataset.from_tensors(x))
  slept = tf.raw_ops.SleepDataset(input_dataset=dataset,
                                  sleep_microseconds=tf.constant(int(seconds * 1e6 / 2), tf.int64),
                                  output_types=[x.dtype], output_shapes=[x.shape])
  return tf.raw_ops.DatasetToSingleElement(dataset=slept, output_types=[x.dtype],
                                           output_shapes=[x.shape])[0]


def build_sleepy(export_dir: str, seconds: float) -> None:
  """Writes a model whose `serving_default` answers y = x after sleeping `seconds`."""

  def graph():
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, 1], name='x')
    y = tf.identity(_sleep_then(x, seconds), name='y')
    return {
        PREDICT_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'x': x}, outputs={'y': y}),
    }

  _save(export_dir, graph)


def marker_path(marker_dir: str, x: int) -> str:
  """The file the warmup probe writes when it has answered a request whose first x is `x`."""
  return os.path.join(marker_dir, f'ran-{x}')


def build_warmup_probe(export_dir: str, marker_dir: str, warmup_xs: Sequence[int],
                       seconds: float = 0.3) -> None:
  """Writes a model that leaves evidence of each request it runs, plus its warmup requests.

  `serving_default` sleeps `seconds`, then writes marker_path(marker_dir, int(x[0][0])) and
  answers y = x. The version ships assets.extra/tf_serving_warmup_requests with one Predict per
  value in `warmup_xs`, so a test can tell whether (and when) the server replayed them.
  """

  def graph():
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, 1], name='x')
    slept = _sleep_then(x, seconds)
    first = tf.strings.as_string(tf.cast(slept[0, 0], tf.int64))
    write = tf.io.write_file(tf.strings.join([marker_dir + os.sep + 'ran-', first]), 'ran')
    with tf.control_dependencies([write]):
      y = tf.identity(slept, name='y')
    return {
        PREDICT_SIGNATURE: tf.compat.v1.saved_model.predict_signature_def(
            inputs={'x': x}, outputs={'y': y}),
    }

  _save(export_dir, graph)
  requests = []
  for value in warmup_xs:
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = PREDICT_SIGNATURE
    request.inputs['x'].CopyFrom(tf.make_tensor_proto([[float(value)]], dtype=tf.float32))
    requests.append(request)
  write_warmup_requests(export_dir, requests)


def write_warmup_requests(export_dir: str, requests: Iterable[predict_pb2.PredictRequest]):
  """Writes TF Serving's warmup file: a TFRecord of PredictionLog, one Predict each."""
  path = os.path.join(export_dir, WARMUP_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for request in requests:
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())


def build_corrupt(export_dir: str) -> None:
  """Writes a half_plus_two whose saved_model.pb is cut in half, as a broken copy leaves it."""
  build_half_plus_two(export_dir, version=99)
  path = os.path.join(export_dir, 'saved_model.pb')
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])


def push_version(base_path: str, version: int, build_fn: BuildFn) -> str:
  """Publishes version `version` under `base_path` atomically and returns its folder.

  The model is written into a temporary folder in the same parent (its name is not a number, so
  servers ignore it), then renamed into place: a server polling `base_path` never sees a
  half-written version.
  """
  os.makedirs(base_path, exist_ok=True)
  final = os.path.join(base_path, str(version))
  if os.path.exists(final):
    raise FileExistsError(f'version {version} already exists in {base_path}')
  staging = tempfile.mkdtemp(prefix=f'.staging-{version}-', dir=base_path)
  try:
    export_dir = os.path.join(staging, 'model')
    build_fn(export_dir)
    os.rename(export_dir, final)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return final


def model_config(name: str, base_path: str, *, policy: str = 'latest', num_latest: int = 1,
                 versions: Sequence[int] = (),
                 labels: Optional[Dict[str, int]] = None) -> model_server_config_pb2.ModelConfig:
  """One ModelConfig entry; policy is 'latest' (num_latest), 'all' or 'specific' (`versions`)."""
  config = model_server_config_pb2.ModelConfig(name=name, base_path=os.path.abspath(base_path),
                                               model_platform='tensorflow')
  if policy == 'latest' and num_latest != 1:
    config.model_version_policy.latest.num_versions = num_latest
  elif policy == 'all':
    config.model_version_policy.all.SetInParent()
  elif policy == 'specific':
    config.model_version_policy.specific.versions.extend(versions)
  elif policy != 'latest':
    raise ValueError(f'unknown version policy {policy!r}')
  for label, version in (labels or {}).items():
    config.version_labels[label] = version
  return config


def server_config(configs: Iterable[model_server_config_pb2.ModelConfig]
                 ) -> model_server_config_pb2.ModelServerConfig:
  """A ModelServerConfig holding `configs`."""
  config = model_server_config_pb2.ModelServerConfig()
  config.model_config_list.config.extend(configs)
  return config


def write_config(path: str, config: model_server_config_pb2.ModelServerConfig) -> None:
  """Writes `config` as the text proto that --model_config_file reads."""
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text_format.MessageToString(config))


def conformance_config(root: str) -> model_server_config_pb2.ModelServerConfig:
  """The config of the conformance models once written under `root`."""
  return server_config([
      model_config(HALF_PLUS_TWO, os.path.join(root, HALF_PLUS_TWO), policy='all',
                   labels={STABLE_LABEL: 1, CANARY_LABEL: 2}),
      model_config(STRING_LENGTH, os.path.join(root, STRING_LENGTH)),
      model_config(COLOUR, os.path.join(root, COLOUR)),
  ])


# The versions every conformance server must have AVAILABLE, by model.
CONFORMANCE_VERSIONS = {HALF_PLUS_TWO: [1, 2], STRING_LENGTH: [1], COLOUR: [1]}
# The flags a server needs for the conformance config: its labels name versions that are not
# loaded yet when the server starts, which tensorflow_model_server refuses without this
# (UpdateModelVersionLabelMap in model_servers/server_core.cc).
CONFORMANCE_FLAGS = ('--allow_version_labels_for_unavailable_models=true',)


def write_conformance_models(root: str) -> str:
  """Writes the conformance models and models.config under `root`; returns the config's path.

  Versions already present are kept (they were published atomically, so they are whole).
  """
  root = os.path.abspath(root)
  builds: List = [
      (HALF_PLUS_TWO, 1, lambda d: build_half_plus_two(d, 1)),
      (HALF_PLUS_TWO, 2, lambda d: build_half_plus_two(d, 2)),
      (STRING_LENGTH, 1, build_string_length),
      (COLOUR, 1, build_colour),
  ]
  for name, version, build_fn in builds:
    if not os.path.isdir(os.path.join(root, name, str(version))):
      push_version(os.path.join(root, name), version, build_fn)
  path = os.path.join(root, CONFIG_FILE)
  write_config(path, conformance_config(root))
  return path


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m tests.serving.fixture_models',
      description='Writes the serving conformance models and DIR/models.config.')
  parser.add_argument('dir', help='output folder (created if missing)')
  args = parser.parse_args(argv)
  path = write_conformance_models(args.dir)
  folder = os.path.dirname(path)
  print(f'Wrote {path}. Start TF Serving on it, with the models at the same path:\n'
        f'  docker run --rm -p 8500:8500 -p 8501:8501 -v {folder}:{folder} '
        f'tensorflow/serving:2.16.1 --model_config_file={path} --port=8500 --rest_api_port=8501 '
        f'{" ".join(CONFORMANCE_FLAGS)}\n'
        'then run the conformance suite against it:\n'
        '  TF_SERVING_TARGET=localhost:8500 TF_SERVING_REST_TARGET=localhost:8501 '
        '.venv/bin/python -m pytest tests/serving/conformance')
  return 0


if __name__ == '__main__':
  sys.exit(main())
