"""The serving client and its CLI commands, against an in-process fake TF Serving gRPC server."""

import argparse
import dataclasses
import io
import json
import pathlib
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any, List, Optional, Tuple

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from components.gan import grid as grid_lib
from serving import client as client_lib
from serving import client_cli

CLASS_NAMES = ('zero', 'one', 'two')
IMAGE_SHAPE = (4, 5, 1)
# Model name -> versions the fake serves; 'broken' has a version that failed to load.
VERSIONS = {'classifier': (1, 2), 'generator': (1,), 'broken': ()}
LABELS = {'stable': 1}


def _fake_images(num_images: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).random((num_images, *IMAGE_SHAPE), dtype=np.float32)


def _class_id(image: bytes) -> int:
  return len(image) % len(CLASS_NAMES)


@dataclasses.dataclass
class FakeServer:
  """What the fake does before answering, and what it was asked."""
  target: str = ''
  unavailable_times: int = 0
  sleep_seconds: float = 0.0
  error: Optional[Tuple[grpc.StatusCode, str]] = None
  drop_output: Optional[str] = None
  calls: List[Tuple[str, Any]] = dataclasses.field(default_factory=list)
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def start_call(self, method: str, request, context) -> int:
    """Records the call, fails as told, and returns the version the request resolves to."""
    with self.lock:
      self.calls.append((method, request))
      unavailable = self.unavailable_times > 0
      self.unavailable_times -= unavailable
    if unavailable:
      context.abort(grpc.StatusCode.UNAVAILABLE, 'fake server: still warming up')
    time.sleep(self.sleep_seconds)
    if self.error:
      context.abort(*self.error)
    spec = request.model_spec
    if spec.name not in VERSIONS:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f'Servable not found for request: Latest({spec.name})')
    versions = VERSIONS[spec.name]
    if spec.HasField('version'):
      if spec.version.value not in versions:
        context.abort(grpc.StatusCode.NOT_FOUND,
                      f'Servable not found for request: Specific({spec.name}, '
                      f'{spec.version.value})')
      return spec.version.value
    if spec.version_label:
      if spec.version_label not in LABELS:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f'Unrecognized servable version label: {spec.version_label}')
      return LABELS[spec.version_label]
    if method != 'GetModelStatus' and not versions:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f'Servable not found for request: Latest({spec.name})')
    return max(versions, default=0)

  def requests(self, method: str) -> list:
    return [request for name, request in self.calls if name == method]


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict for a 3-class classifier and a 4x5 grayscale generator; GetModelMetadata."""

  def __init__(self, fake: FakeServer):
    self._fake = fake

  def Predict(self, request, context):
    version = self._fake.start_call('Predict', request, context)
    name, signature = request.model_spec.name, request.model_spec.signature_name
    response = predict_pb2.PredictResponse()
    response.model_spec.name = name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature
    if (name, signature) == ('classifier', 'serving_default'):
      images = tf.make_ndarray(request.inputs['images'])
      class_ids = np.array([_class_id(image) for image in images], dtype=np.int64)
      probabilities = np.full((len(images), len(CLASS_NAMES)), 0.1, dtype=np.float32)
      probabilities[np.arange(len(images)), class_ids] = 0.8
      outputs = {'probabilities': probabilities, 'class_ids': class_ids,
                 'class_names': np.array([CLASS_NAMES[i].encode() for i in class_ids],
                                         dtype=object)}
    elif (name, signature) == ('generator', 'generate'):
      if (request.inputs['num_images'].dtype != tf.int32.as_datatype_enum or
          request.inputs['seed'].dtype != tf.int64.as_datatype_enum):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'expects int32 num_images, int64 seed')
      images = _fake_images(int(tf.make_ndarray(request.inputs['num_images'])),
                            int(tf.make_ndarray(request.inputs['seed'])))
      outputs = {'images': images, 'png': np.array([_png(image) for image in images],
                                                   dtype=object)}
    else:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f'Serving signature name: "{signature}" not found in signature def')
    for alias, value in outputs.items():
      if alias != self._fake.drop_output and (
          not request.output_filter or alias in request.output_filter):
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return response

  def GetModelMetadata(self, request, context):
    version = self._fake.start_call('GetModelMetadata', request, context)
    if list(request.metadata_field) != ['signature_def']:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f'Metadata field {list(request.metadata_field)} is not supported')
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    init = signatures.signature_def['__saved_model_init_op']
    init.outputs['__saved_model_init_op'].name = 'NoOp'
    init.outputs['__saved_model_init_op'].tensor_shape.unknown_rank = True
    if request.model_spec.name == 'classifier':
      signature = signatures.signature_def['serving_default']
      signature.method_name = 'tensorflow/serving/predict'
      _tensor(signature.inputs['images'], tf.string, [None])
      _tensor(signature.outputs['probabilities'], tf.float32, [None, len(CLASS_NAMES)])
      _tensor(signature.outputs['class_ids'], tf.int64, [None])
      _tensor(signature.outputs['class_names'], tf.string, [None])
    else:
      signature = signatures.signature_def['generate']
      signature.method_name = 'tensorflow/serving/predict'
      _tensor(signature.inputs['num_images'], tf.int32, [])
      _tensor(signature.inputs['seed'], tf.int64, [])
      _tensor(signature.outputs['images'], tf.float32, [None, *IMAGE_SHAPE])
      _tensor(signature.outputs['png'], tf.string, [None])
    response.metadata['signature_def'].Pack(signatures)
    return response


class FakeModelService(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus: the latest version AVAILABLE, older ones END; 'broken' failed to load."""

  def __init__(self, fake: FakeServer):
    self._fake = fake

  def GetModelStatus(self, request, context):
    self._fake.start_call('GetModelStatus', request, context)
    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus
    versions = VERSIONS[request.model_spec.name]
    for version in versions:
      status = response.model_version_status.add(version=version)
      status.state = states.AVAILABLE if version == max(versions) else states.END
    if not versions:
      status = response.model_version_status.add(version=3, state=states.END)
      status.status.error_code = grpc.StatusCode.NOT_FOUND.value[0]
      status.status.error_message = 'Could not find SavedModel .pb or .pbtxt'
    return response


def _tensor(info: meta_graph_pb2.TensorInfo, dtype: tf.DType, shape: List[Optional[int]]):
  info.dtype = dtype.as_datatype_enum
  info.tensor_shape.CopyFrom(tf.TensorShape(shape).as_proto())


def _png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.round(image[..., 0] * 255).astype(np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def _start(fake: FakeServer, credentials: Optional[grpc.ServerCredentials] = None,
           host: str = '127.0.0.1') -> grpc.Server:
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      FakePredictionService(fake), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(FakeModelService(fake), server)
  if credentials is None:
    port = server.add_insecure_port(f'{host}:0')
  else:
    port = server.add_secure_port(f'{host}:0', credentials)
  server.start()
  fake.target = f'{host}:{port}'
  return server


@pytest.fixture(name='fake')
def _fake_server():
  fake = FakeServer()
  server = _start(fake)
  yield fake
  server.stop(grace=None)


def _client(fake: FakeServer, **kwargs) -> client_lib.ServingClient:
  kwargs.setdefault('backoff', 0.01)
  return client_lib.ServingClient(fake.target, **kwargs)


# The client.


def test_classify_images_answers_per_image_in_order(fake):
  with _client(fake) as client:
    predictions = client.classify_images('classifier', [b'abc', b'abcd', b'abcde', b'abcdef'])
  assert predictions == [
      client_lib.Prediction(class_id=i % 3, class_name=CLASS_NAMES[i % 3],
                            probability=pytest.approx(0.8),
                            probabilities=pytest.approx(tuple(0.8 if k == i % 3 else 0.1
                                                              for k in range(3))))
      for i in range(4)]
  [request] = fake.requests('Predict')
  assert request.model_spec.signature_name == 'serving_default'
  assert not request.model_spec.HasField('version') and not request.model_spec.version_label
  assert list(tf.make_ndarray(request.inputs['images'])) == [b'abc', b'abcd', b'abcde', b'abcdef']


def test_predict_sends_version_label_and_output_filter(fake):
  with _client(fake) as client:
    outputs = client.predict('classifier', {'images': [b'ab', b'a']}, version_label='stable',
                             output_filter=['class_ids'])
  assert list(outputs) == ['class_ids']
  np.testing.assert_array_equal(outputs['class_ids'], [2, 1])
  [request] = fake.requests('Predict')
  assert request.model_spec.version_label == 'stable'
  assert list(request.output_filter) == ['class_ids']


def test_predict_sends_a_specific_version(fake):
  with _client(fake) as client:
    client.predict('classifier', {'images': np.array([b'x'], dtype=object)}, version=1)
  assert fake.requests('Predict')[0].model_spec.version.value == 1


@pytest.mark.parametrize('call, message', [
    (lambda c: c.predict('classifier', {'images': [b'a']}, version=1, version_label='stable'),
     'not both'),
    (lambda c: c.classify_images('classifier', []), 'no images to classify'),
    (lambda c: c.generate('generator', 0, seed=1), 'num_images must be positive, got 0'),
    (lambda c: c.predict('classifier', {'images': {'a': 1}}), "input 'images' cannot be made"),
])
def test_bad_arguments_fail_before_sending(fake, call, message):
  with _client(fake) as client, pytest.raises(ValueError, match=message):
    call(client)
  assert not fake.calls


def test_generate_returns_float_images_and_one_png_each(fake):
  with _client(fake) as client:
    generated = client.generate('generator', 3, seed=7)
  assert generated.images.dtype == np.float32
  np.testing.assert_array_equal(generated.images, _fake_images(3, 7))
  assert len(generated.png) == 3
  assert Image.open(io.BytesIO(generated.png[2])).size == (IMAGE_SHAPE[1], IMAGE_SHAPE[0])
  [request] = fake.requests('Predict')
  assert request.model_spec.signature_name == 'generate'


def test_model_status_lists_versions_newest_first_with_errors(fake):
  with _client(fake) as client:
    assert client.model_status('classifier') == [
        {'version': 2, 'state': 'AVAILABLE', 'error': ''},
        {'version': 1, 'state': 'END', 'error': ''}]
    assert client.model_status('broken') == [
        {'version': 3, 'state': 'END',
         'error': 'NOT_FOUND: Could not find SavedModel .pb or .pbtxt'}]


def test_model_metadata_unpacks_the_signature_def_map(fake):
  with _client(fake) as client:
    signatures = client.model_metadata('generator', version=1)
  assert signatures == {
      '__saved_model_init_op': {
          'method_name': '', 'inputs': {},
          'outputs': {'__saved_model_init_op': {'dtype': None, 'shape': None}}},
      'generate': {
          'method_name': 'tensorflow/serving/predict',
          'inputs': {'num_images': {'dtype': 'int32', 'shape': []},
                     'seed': {'dtype': 'int64', 'shape': []}},
          'outputs': {'images': {'dtype': 'float32', 'shape': [None, 4, 5, 1]},
                      'png': {'dtype': 'string', 'shape': [None]}}}}
  [request] = fake.requests('GetModelMetadata')
  assert list(request.metadata_field) == ['signature_def']
  assert request.model_spec.version.value == 1


def test_unavailable_is_retried_with_exponential_backoff(fake):
  fake.unavailable_times = 2
  started = time.monotonic()
  with _client(fake, retries=3, backoff=0.1) as client:
    assert client.model_status('generator')[0]['state'] == 'AVAILABLE'
  assert len(fake.calls) == 3
  assert time.monotonic() - started >= 0.1 + 0.2


def test_unavailable_gives_up_after_the_retries(fake):
  fake.unavailable_times = 100
  with _client(fake, retries=2) as client, pytest.raises(client_lib.ServingError) as raised:
    client.predict('classifier', {'images': [b'a']}, version=2)
  assert raised.value.code == grpc.StatusCode.UNAVAILABLE
  assert str(raised.value) == (
      f"Predict for model 'classifier' version 2, signature 'serving_default' at {fake.target} "
      'failed: UNAVAILABLE: fake server: still warming up (gave up after 3 attempts). '
      f'Is the server running at {fake.target}?')
  assert len(fake.calls) == 3


def test_no_server_suggests_checking_it_runs():
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    target = f'127.0.0.1:{sock.getsockname()[1]}'
  client = client_lib.ServingClient(target, retries=1, backoff=0.01)
  with client, pytest.raises(client_lib.ServingError,
                             match=f'UNAVAILABLE.*Is the server running at {target}') as raised:
    client.model_status('classifier')
  assert raised.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize('code, details', [
    (grpc.StatusCode.NOT_FOUND, 'Servable not found for request: Specific(classifier, 9)'),
    (grpc.StatusCode.INVALID_ARGUMENT, 'input size does not match signature: 2!=1'),
    (grpc.StatusCode.INTERNAL, 'out of memory'),
])
def test_other_errors_are_not_retried_and_say_what_the_server_said(fake, code, details):
  fake.error = (code, details)
  with _client(fake, retries=3) as client, pytest.raises(client_lib.ServingError) as raised:
    client.classify_images('classifier', [b'a'], version=9)
  assert raised.value.code == code
  assert str(raised.value) == (
      f"Predict for model 'classifier' version 9, signature 'serving_default' at {fake.target} "
      f'failed: {code.name}: {details}')
  assert len(fake.calls) == 1


def test_an_unknown_model_surfaces_not_found(fake):
  with _client(fake) as client, pytest.raises(
      client_lib.ServingError, match=r"GetModelMetadata for model 'nope' at .* failed: NOT_FOUND: "
      r'Servable not found for request: Latest\(nope\)$') as raised:
    client.model_metadata('nope')
  assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_a_slow_server_exceeds_the_deadline_without_retries(fake):
  fake.sleep_seconds = 0.5
  started = time.monotonic()
  with _client(fake, timeout=0.1, retries=3) as client, pytest.raises(
      client_lib.ServingError, match=r'DEADLINE_EXCEEDED: .*no answer within the 0\.1 s timeout'
  ) as raised:
    client.generate('generator', 2, seed=1)
  assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
  assert len(fake.calls) == 1
  assert time.monotonic() - started < 0.45


def test_an_answer_without_the_expected_output_is_a_clear_error(fake):
  fake.drop_output = 'class_names'
  with _client(fake) as client, pytest.raises(
      client_lib.ServingError, match="returned no 'class_names' output.*class_ids, probabilities"
  ) as raised:
    client.classify_images('classifier', [b'a'])
  assert raised.value.code is None


def test_closing_the_client_closes_the_channel(fake):
  with _client(fake) as client:
    client.model_status('classifier')
  with pytest.raises(ValueError, match='closed channel'):
    client.model_status('classifier')


@pytest.mark.parametrize('kwargs, message', [
    ({'timeout': 0}, 'timeout must be positive'),
    ({'retries': -1}, 'must not be negative'),
])
def test_bad_client_settings(kwargs, message):
  with pytest.raises(ValueError, match=message):
    client_lib.ServingClient('localhost:1', **kwargs)


def test_tls_with_a_self_signed_certificate(self_signed_certificate):
  key, cert = self_signed_certificate
  fake = FakeServer()
  server = _start(fake, grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]),
                  host='localhost')
  try:
    with client_lib.ServingClient(fake.target,
                                  credentials=client_lib.ssl_credentials(str(cert))) as client:
      assert client.model_status('generator')[0]['state'] == 'AVAILABLE'
    # An insecure client cannot talk to it.
    with client_lib.ServingClient(fake.target, retries=0) as client, pytest.raises(
        client_lib.ServingError, match='UNAVAILABLE'):
      client.model_status('generator')
  finally:
    server.stop(grace=None)


def test_ssl_credentials_names_a_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='no-ca.pem'):
    client_lib.ssl_credentials(str(tmp_path / 'no-ca.pem'))


# The CLI commands.


def _run(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(prog='ganpipe')
  client_cli.add_parsers(parser.add_subparsers(dest='command', required=True))
  args = parser.parse_args(argv)
  return args.handler(args)


def _write_images(tmp_path, sizes) -> List[str]:
  paths = []
  for index, size in enumerate(sizes):
    path = tmp_path / f'image{index}.png'
    path.write_bytes(b'x' * size)
    paths.append(str(path))
  return paths


def test_cli_classify_prints_path_class_and_probability(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [3, 4, 5])
  assert _run(['classify', '--target', fake.target, *paths]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [line.split() for line in lines] == [
      [paths[0], 'zero', '0.800'], [paths[1], 'one', '0.800'], [paths[2], 'two', '0.800']]


def test_cli_classify_json_and_version(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [4, 3])
  assert _run(['classify', '--target', fake.target, '--version', '1', '--json',
               '--batch-size', '1', *paths]) == 0
  assert json.loads(capsys.readouterr().out) == [
      {'path': paths[0], 'class_id': 1, 'class_name': 'one', 'probability': pytest.approx(0.8),
       'probabilities': pytest.approx([0.1, 0.8, 0.1])},
      {'path': paths[1], 'class_id': 0, 'class_name': 'zero', 'probability': pytest.approx(0.8),
       'probabilities': pytest.approx([0.8, 0.1, 0.1])}]
  requests = fake.requests('Predict')
  assert len(requests) == 2
  assert {request.model_spec.version.value for request in requests} == {1}


def test_cli_classify_missing_files_are_named_and_nothing_is_sent(fake, tmp_path, capsys):
  [good] = _write_images(tmp_path, [3])
  empty = tmp_path / 'empty.png'
  empty.write_bytes(b'')
  missing = str(tmp_path / 'missing.png')
  assert _run(['classify', '--target', fake.target, good, missing, str(empty)]) == 1
  captured = capsys.readouterr()
  assert captured.out == ''
  assert captured.err == (
      f"ganpipe: error: cannot read images '{missing}' (No such file or directory), "
      f"'{empty}' (empty file); nothing was sent\n")
  assert not fake.calls


def test_cli_classify_server_error_is_one_line(fake, tmp_path, capsys):
  paths = _write_images(tmp_path, [3])
  assert _run(['classify', '--target', fake.target, '--model', 'nope', *paths]) == 1
  err = capsys.readouterr().err
  assert err == (f"ganpipe: error: Predict for model 'nope', signature 'serving_default' at "
                 f'{fake.target} failed: NOT_FOUND: Servable not found for request: '
                 'Latest(nope)\n')


def test_cli_timeout_flag_sets_the_deadline(fake, tmp_path, capsys):
  fake.sleep_seconds = 0.5
  paths = _write_images(tmp_path, [3])
  assert _run(['classify', '--target', fake.target, '--timeout', '0.1', *paths]) == 1
  assert 'DEADLINE_EXCEEDED: ' in capsys.readouterr().err
  assert len(fake.calls) == 1


def test_cli_generate_writes_the_grid_and_the_images(fake, tmp_path, capsys):
  out, images_dir = tmp_path / 'new' / 'grid.png', tmp_path / 'images'
  assert _run(['generate', '--target', fake.target, '-n', '5', '--seed', '7', '--out', str(out),
               '--images-dir', str(images_dir)]) == 0
  assert capsys.readouterr().out.splitlines() == [
      f'Wrote {out}: 5 images of 4x5x1 in a 2x3 grid (19x11 pixels)',
      f'Wrote 5 PNGs to {images_dir}']
  with Image.open(out) as grid:
    assert (grid.format, grid.mode, grid.size) == ('PNG', 'L', (3 * (5 + 1) + 1, 2 * (4 + 1) + 1))
    np.testing.assert_array_equal(np.asarray(grid),
                                  grid_lib.make_grid(_fake_images(5, 7), columns=3)[..., 0])
  files = sorted(path.name for path in images_dir.iterdir())
  assert files == [f'image_00{i}.png' for i in range(5)]
  with Image.open(images_dir / 'image_004.png') as image:
    assert image.size == (5, 4)


def test_cli_generate_columns_and_label(fake, tmp_path, capsys):
  out = tmp_path / 'row.png'
  assert _run(['generate', '--target', fake.target, '-n', '3', '--columns', '10', '--label',
               'stable', '--out', str(out)]) == 0
  assert '1x3 grid (19x6 pixels)' in capsys.readouterr().out
  with Image.open(out) as grid:
    assert grid.size == (19, 6)
  assert fake.requests('Predict')[0].model_spec.version_label == 'stable'


def test_cli_generate_unwritable_out(fake, tmp_path, capsys):
  (tmp_path / 'file').write_text('')
  out = tmp_path / 'file' / 'grid.png'
  assert _run(['generate', '--target', fake.target, '--out', str(out)]) == 1
  assert capsys.readouterr().err.startswith(f"ganpipe: error: cannot write --out '{out}': ")


def test_cli_models_shows_versions_and_signatures(fake, capsys):
  assert _run(['models', '--target', fake.target, 'classifier']) == 0
  assert capsys.readouterr().out.splitlines() == [
      'classifier',
      '  version 2  AVAILABLE',
      '  version 1  END',
      '  signature serving_default (tensorflow/serving/predict)',
      '    in   images         string   [?]',
      '    out  class_ids      int64    [?]',
      '    out  class_names    string   [?]',
      '    out  probabilities  float32  [?, 3]']


def test_cli_models_json_reports_every_model_and_fails_for_bad_ones(fake, capsys):
  assert _run(['models', '--target', fake.target, '--json', 'generator', 'nope', 'broken']) == 1
  captured = capsys.readouterr()
  reports = json.loads(captured.out)
  assert [report['model'] for report in reports] == ['generator', 'broken']
  assert reports[0]['versions'] == [{'version': 1, 'state': 'AVAILABLE', 'error': ''}]
  assert reports[0]['signatures']['generate']['inputs']['seed'] == {'dtype': 'int64', 'shape': []}
  assert reports[1]['versions'][0]['error'].startswith('NOT_FOUND: Could not find SavedModel')
  assert reports[1]['signatures'] is None
  errors = captured.err.splitlines()
  assert len(errors) == 2
  assert errors[0].startswith("ganpipe: error: GetModelStatus for model 'nope' at ")
  assert errors[1].startswith("ganpipe: error: GetModelMetadata for model 'broken' at ")


def test_cli_missing_ca_cert(fake, tmp_path, capsys):
  ca = tmp_path / 'ca.pem'
  assert _run(['models', '--target', fake.target, '--ca-cert', str(ca)]) == 1
  assert capsys.readouterr().err == (
      f"ganpipe: error: cannot read --ca-cert '{ca}': No such file or directory\n")
  assert not fake.calls


@pytest.mark.parametrize('command', ['classify', 'generate', 'models'])
def test_cli_help_documents_target_and_timeout(command, capsys):
  with pytest.raises(SystemExit) as exited:
    _run([command, '--help'])
  assert exited.value.code == 0
  out = capsys.readouterr().out
  assert '--target HOST:PORT' in out and 'localhost:8500' in out and '--timeout SECONDS' in out


@pytest.mark.parametrize('argv, message', [
    (['classify', '--timeout', '0', 'a.png'], 'must be a positive number of seconds, got 0'),
    (['classify', '--version', '1', '--label', 'stable', 'a.png'], 'not allowed with argument'),
    (['generate', '-n', '0', '--out', 'x.png'], 'must be a positive integer, got 0'),
    (['generate', '--seed', '1'], 'the following arguments are required: --out'),
])
def test_cli_usage_errors(argv, message, capsys):
  with pytest.raises(SystemExit) as exited:
    _run(argv)
  assert exited.value.code == 2
  assert message in capsys.readouterr().err


def test_cli_parsing_and_missing_files_do_not_load_tensorflow(tmp_path):
  # TensorFlow takes seconds to import; `--help` and a mistyped path should not wait for it.
  script = f'''
import argparse, sys
from serving import client_cli
parser = argparse.ArgumentParser(prog='ganpipe')
client_cli.add_parsers(parser.add_subparsers(dest='command', required=True))
args = parser.parse_args(['classify', {str(tmp_path / 'missing.png')!r}])
assert args.handler(args) == 1
print('tensorflow' in sys.modules, 'grpc' in sys.modules)
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, timeout=60, cwd=pathlib.Path(__file__).parents[2])
  assert result.stdout.split() == ['False', 'False']
  assert 'missing.png' in result.stderr
