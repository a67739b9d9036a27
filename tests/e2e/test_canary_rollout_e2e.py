"""A whole canary rollout under load against `ganpipe serve` polling models.config.

The versions are small MLP classifiers exported as the pipeline's Trainer exports them (a real
Transform graph inside), pushed by the ServingPusher's executor. v1 serves as stable; v2 is
pushed as a canary, labelled, served to both labels' clients and promoted by its live figures;
v3, which fails on bright images, is pushed as a canary and rolled back by them. The clients of
`stable` see no failed request throughout.
"""

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from PIL import Image
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from ganpipe.app import cli
from ganpipe.components.serving_pusher import executor as executor_lib
from ganpipe.models import features
from ganpipe.models import preprocessing
from ganpipe.models.classifier import model as model_lib
from ganpipe.models.classifier import training
from ganpipe.pipeline import config as config_lib

pytestmark = pytest.mark.e2e
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIN_REQUESTS = 40
SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def _transform_output(out_dir: str):
  """The Transform graph the pipeline's Transform writes, from a few PNGs (seconds, not a run)."""
  # pylint: disable=import-outside-toplevel
  import apache_beam as beam
  import tensorflow_transform as tft
  import tensorflow_transform.beam as tft_beam
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}))
  with beam.Pipeline(runner=config_lib.BEAM_LOCAL_RUNNER) as pipeline, tft_beam.Context(
      temp_dir=os.path.join(out_dir, 'tmp')):
    rows = pipeline | beam.Create([{features.IMAGE_KEY: [png], features.LABEL_KEY: [label]}
                                   for label, png in enumerate(IMAGES)])
    transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(
        lambda inputs: preprocessing.preprocessing_fn(
            inputs, {preprocessing.IMAGE_SHAPE: list(SHAPE)}))
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  metadata_io.write_metadata(metadata, os.path.join(out_dir, 'metadata'))  # the raw schema
  return tft.TFTransformOutput(out_dir)


def _fail_on_bright(pixels):
  check = tf.debugging.assert_less(pixels[:, 0, 0, 0], 0.5, message='bright image')
  with tf.control_dependencies([check]):
    return tf.identity(pixels)


def _exporter(transform_output, fails_on_bright: bool = False):
  """Saves a small MLP classifier as the pipeline's Trainer exports it (training.export); with
  `fails_on_bright`, its first layer fails (INVALID_ARGUMENT) on an image whose first pixel is
  bright."""
  def save(export_dir: str) -> None:
    if fails_on_bright:
      inputs = keras.Input(shape=SHAPE, name=model_lib.INPUT_NAME)
      x = keras.layers.Flatten()(keras.layers.Lambda(_fail_on_bright)(inputs))
      x = keras.layers.Dense(16, activation='relu', name=model_lib.FEATURES_LAYER)(x)
      model = keras.Model(inputs, keras.layers.Dense(
          NUM_CLASSES, activation='softmax', name=model_lib.OUTPUT_LAYER)(x))
    else:
      model = model_lib.build_classifier(SHAPE, NUM_CLASSES, (16,))
    training.export(model, transform_output, [f'class_{i}' for i in range(NUM_CLASSES)],
                    export_dir)
  return save


def _png(value: int) -> bytes:
  pixels = np.full(SHAPE[:2], value, np.uint8)
  pixels[1:, :] = np.arange(SHAPE[0] * SHAPE[1] - SHAPE[1], dtype=np.uint8).reshape(-1, SHAPE[1])
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


IMAGES = [_png(10), _png(240)]  # v3 fails on the second


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _push(tmp_path, save, mode: str) -> int:
  """Runs the ServingPusher's executor on a model laid out as the InfraValidator leaves it."""
  index = len(os.listdir(tmp_path / 'models')) if (tmp_path / 'models').exists() else 0
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(tmp_path / 'models' / str(index))
  save(os.path.join(blessing.uri, 'stamped_model'))
  blessing.set_int_custom_property('blessed', 1)
  blessing.set_int_custom_property('has_model', 1)
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.set_int_custom_property('blessed', 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed' / str(index))
  config = {'model_name': 'classifier', 'serving_root': str(tmp_path / 'serving'),
            'keep_versions': 3, 'rollout': mode}
  executor_lib.Executor().Do(
      {specs.MODEL_BLESSING_KEY: [model_blessing], specs.INFRA_BLESSING_KEY: [blessing]},
      {specs.PUSHED_MODEL_KEY: [pushed]},
      {specs.PUSH_DESTINATION_KEY: '{}', specs.CUSTOM_CONFIG_KEY: json.dumps(config)})
  return int(pushed.get_string_custom_property('pushed_version'))


class Load:
  """Clients sending both images, by label, until stopped; counts answers and failures."""

  def __init__(self, target: str, label: str, clients: int = 2):
    self.label, self.target = label, target
    self.ok, self.failures, self.versions = 0, [], set()
    self._stop = threading.Event()
    self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

  def __enter__(self):
    for thread in self._threads:
      thread.start()
    return self

  def __exit__(self, *exc_info):
    self._stop.set()
    for thread in self._threads:
      thread.join(30)

  def _run(self):
    with grpc.insecure_channel(self.target) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      for count in range(10**9):
        if self._stop.is_set():
          return
        try:
          version = _predict(stub, self.label, IMAGES[count % 2])
          self.ok += 1
          self.versions.add(version)
        except grpc.RpcError as error:
          self.failures.append(f'{error.code().name}: {error.details()}')
          time.sleep(0.05)


def _predict(stub, label, png) -> int:
  """The version that answered a Predict by `label` (None: the latest)."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'classifier'
  if label:
    request.model_spec.version_label = label
  request.inputs['images'].CopyFrom(tf.make_tensor_proto([png]))
  return stub.Predict(request, timeout=30).model_spec.version.value


def _cli(*argv) -> int:
  return cli.main(list(argv))


def _until(condition, what: str, seconds: float = 60):
  deadline = time.monotonic() + seconds
  while not condition():
    assert time.monotonic() < deadline, f'timed out waiting for {what}'
    time.sleep(0.2)


def _label_version(stub, label: str):
  try:
    return _predict(stub, label, IMAGES[0])
  except grpc.RpcError:
    return None


def test_a_canary_is_promoted_then_a_bad_one_is_rolled_back_with_stable_never_failing(
    tmp_path, capsys):
  root = str(tmp_path / 'serving')
  transform_output = _transform_output(str(tmp_path / 'transform'))
  v1 = _push(tmp_path, _exporter(transform_output), 'direct')
  grpc_port, rest_port = _free_port(), _free_port()
  (tmp_path / 'monitoring.config').write_text(
      'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }')
  server = subprocess.Popen(
      [sys.executable, '-m', 'ganpipe.app.cli', 'serve', '--port', str(grpc_port),
       '--rest_api_port', str(rest_port), '--model_config_file', f'{root}/models.config',
       '--model_config_file_poll_wait_seconds', '0.5', '--file_system_poll_wait_seconds', '0.5',
       '--monitoring_config_file', str(tmp_path / 'monitoring.config')],
      cwd=REPO, env={**os.environ, 'PYTHONPATH': REPO}, stdout=subprocess.DEVNULL,
      stderr=open(tmp_path / 'server.log', 'w'))  # pylint: disable=consider-using-with
  target = f'127.0.0.1:{grpc_port}'
  common = ['--serving-root', root, '--target', target, '--metrics-url',
            f'http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics']
  try:
    with grpc.insecure_channel(target) as channel:
      client = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      _until(lambda: _label_version(client, None) == v1, 'v1 to serve', 120)
      assert _cli('rollout', 'label', 'classifier', *common) == 0
      _until(lambda: _label_version(client, 'stable') == v1, 'stable on v1')
      with Load(target, 'stable') as stable, Load(target, 'canary', clients=1) as canary:
        # v2: another sound model, so its live figures pass.
        v2 = _push(tmp_path, _exporter(transform_output), 'canary')
        assert _cli('rollout', 'label', 'classifier', *common, '--wait', '120') == 0
        _until(lambda: _label_version(client, 'canary') == v2, 'canary on v2')
        _until(lambda: canary.ok >= MIN_REQUESTS, 'canary traffic to v2')
        # The load on this shared machine makes latency noisy: the factor allows for it.
        assert _cli('rollout', 'promote', 'classifier', *common, '--auto', '--min-requests',
                    str(MIN_REQUESTS), '--latency-factor', '20') == 0
        _until(lambda: _label_version(client, 'stable') == v2, 'stable on v2')
        v3 = _push(tmp_path, _exporter(transform_output, fails_on_bright=True), 'canary')
        assert _cli('rollout', 'label', 'classifier', *common, '--wait', '120') == 0
        _until(lambda: _label_version(client, 'canary') == v3, 'canary on v3')
        failed_before = len(canary.failures)
        _until(lambda: len(canary.failures) - failed_before >= MIN_REQUESTS // 2,
               'canary traffic to v3')
        assert _cli('rollout', 'status', 'classifier', *common) == 0
        status = capsys.readouterr().out
        assert f'version {v3}  canary  labels: canary' in status
        assert _cli('rollout', 'promote', 'classifier', *common, '--auto', '--min-requests',
                    str(MIN_REQUESTS // 2), '--latency-factor', '20') == 3
        rolled_back = capsys.readouterr().out
        _until(lambda: _label_version(client, 'canary') is None, 'the canary label to go')
        time.sleep(1)  # more stable traffic after the rollback
      assert _cli('classify', *[str(p) for p in _write(tmp_path)], '--label', 'stable',
                  '--target', target, '--json') == 0
      classified = json.loads(capsys.readouterr().out)
  finally:
    server.terminate()
    server.wait(60)
  assert stable.failures == [] and stable.ok > 100, (stable.ok, stable.failures[:3])
  assert stable.versions == {v1, v2}
  assert canary.versions >= {v2, v3}
  assert "error rate" in rolled_back and f'rolled back canary version {v3}' in rolled_back
  assert not os.path.exists(os.path.join(root, 'classifier', str(v3)))
  assert sorted(int(v) for v in os.listdir(os.path.join(root, 'classifier'))) == [v1, v2]
  assert len(classified) == 2
  v3_errors = sum('bright image' in failure for failure in canary.failures)
  assert v3_errors >= MIN_REQUESTS // 2
  print(f'stable: {stable.ok} answers, 0 failures; canary: {canary.ok} answers, {v3_errors} '
        f"v3 errors, {len(canary.failures) - v3_errors} while no version had the label",
        file=sys.stderr)


def _write(tmp_path):
  paths = []
  for index, png in enumerate(IMAGES):
    path = tmp_path / f'image{index}.png'
    path.write_bytes(png)
    paths.append(path)
  return paths
