"""Serving test fixtures: a TF-Serving-compatible server holding the fixture models.

With TF_SERVING_TARGET=host:port (gRPC) set, the tests talk to that server, which must have been
started on the output of `python -m tests.serving.fixture_models DIR` (TF_SERVING_REST_TARGET
gives its REST host:port). Otherwise they start ganpipe's own server on fresh fixture models.
"""

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.fake_tf_serving import fake  # noqa: F401  (a fixture)
from tests.serving import fixture_models

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRPC_ENV = 'TF_SERVING_TARGET'
REST_ENV = 'TF_SERVING_REST_TARGET'
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE

_GRPC_LINE = re.compile(r'Running gRPC ModelServer at (\S+):(\d+)')
_REST_LINE = re.compile(r'Exporting HTTP/REST API at:(\S+):(\d+)')


def _connectable(host: str) -> str:
  return '127.0.0.1' if host in ('0.0.0.0', '', '[::]', '::') else host


class ServerProcess:
  """ganpipe's model server in a subprocess, with its output in files so pipes never fill."""

  def __init__(self, args: Sequence[str], log_dir: str, name: str = 'server'):
    os.makedirs(log_dir, exist_ok=True)
    self.stdout_path = os.path.join(log_dir, f'{name}.stdout')
    self.stderr_path = os.path.join(log_dir, f'{name}.stderr')
    self.args = list(args)
    command = [sys.executable, '-m', 'ganpipe.serving', '--host', '127.0.0.1', '--port', '0',
               '--rest_api_port', '0', *self.args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
    with open(self.stdout_path, 'wb') as out, open(self.stderr_path, 'wb') as err:
      self.popen = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err,
                                      stdin=subprocess.DEVNULL, env=env)
    self.grpc_target: Optional[str] = None
    self.rest_target: Optional[str] = None

  def output(self) -> str:
    with open(self.stdout_path, encoding='utf-8', errors='replace') as f:
      return f.read()

  def stderr_tail(self, chars: int = 4000) -> str:
    with open(self.stderr_path, encoding='utf-8', errors='replace') as f:
      return f.read()[-chars:]

  def describe(self) -> str:
    return (f'server {self.args} (exit code {self.popen.poll()})\n'
            f'--- stdout ---\n{self.output()[-2000:]}\n--- stderr (tail) ---\n'
            f'{self.stderr_tail()}')

  def wait_for_ports(self, timeout_s: float = START_TIMEOUT_S) -> None:
    """Waits for the 'Running gRPC ModelServer at' line (and the REST one) on stdout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
      out = self.output()
      grpc_match, rest_match = _GRPC_LINE.search(out), _REST_LINE.search(out)
      if grpc_match and rest_match:
        self.grpc_target = f'{_connectable(grpc_match.group(1))}:{grpc_match.group(2)}'
        self.rest_target = f'{_connectable(rest_match.group(1))}:{rest_match.group(2)}'
        return
      if self.popen.poll() is not None:
        pytest.fail(f'the model server exited before it was ready.\n{self.describe()}')
      time.sleep(0.1)
    self.kill()
    pytest.fail(f'the model server printed no "Running gRPC ModelServer at" and "Exporting '
                f'HTTP/REST API at:" lines within {timeout_s:.0f} s.\n{self.describe()}')

  def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERMs the server and returns its exit code; kills it if it does not exit in time."""
    if self.popen.poll() is None:
      self.popen.send_signal(signal.SIGTERM)
    try:
      return self.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      self.kill()
      pytest.fail(f'the model server did not exit within {timeout_s:.0f} s of SIGTERM.\n'
                  f'{self.describe()}')
      raise  # unreachable; pytest.fail raises

  def kill(self) -> None:
    if self.popen.poll() is None:
      self.popen.kill()
      self.popen.wait(timeout=10)


def wait_until_available(channel: grpc.Channel, versions: Dict[str, Sequence[int]],
                         timeout_s: float, describe: Callable[[], str]) -> None:
  """Polls GetModelStatus until every listed version of every model is AVAILABLE."""
  stub = model_service_pb2_grpc.ModelServiceStub(channel)
  deadline = time.monotonic() + timeout_s
  last = ''
  while True:
    missing = []
    for name, wanted in versions.items():
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = name
      try:
        response = stub.GetModelStatus(request, timeout=5)
      except grpc.RpcError as error:
        missing.append(name)
        last = f'{name}: {error.code().name} {error.details()}'
        continue
      available = {s.version for s in response.model_version_status if s.state == AVAILABLE}
      if not set(wanted) <= available:
        missing.append(name)
        last = f'{name}: {response}'
    if not missing:
      return
    if time.monotonic() > deadline:
      pytest.fail(f'models {missing} were not AVAILABLE (versions {versions}) within '
                  f'{timeout_s:.0f} s; last status: {last}\n{describe()}')
    time.sleep(0.1)


@dataclasses.dataclass
class Server:
  """A running server as the tests see it."""
  grpc_target: str
  rest_target: Optional[str]
  # Our own subprocess; None for an external server (TF_SERVING_TARGET).
  process: Optional[ServerProcess]
  model_root: Optional[str] = None

  @property
  def own(self) -> bool:
    return self.process is not None

  def describe(self) -> str:
    return self.process.describe() if self.process else f'external server {self.grpc_target}'


class ServerFactory:
  """Starts own servers and stops whatever is still running at the end of the session."""

  def __init__(self, log_dir: str):
    self._log_dir = log_dir
    self._started: List[ServerProcess] = []

  def start(self, args: Sequence[str], versions: Dict[str, Sequence[int]], name: str = 'server',
            timeout_s: float = START_TIMEOUT_S) -> Server:
    process = ServerProcess(args, self._log_dir, name=f'{name}-{len(self._started)}')
    self._started.append(process)
    start = time.monotonic()
    process.wait_for_ports(timeout_s)
    with grpc.insecure_channel(process.grpc_target) as channel:
      wait_until_available(channel, versions, timeout_s - (time.monotonic() - start),
                           process.describe)
    return Server(process.grpc_target, process.rest_target, process)

  def stop_all(self) -> None:
    for process in self._started:
      if process.popen.poll() is None:
        process.terminate()


@pytest.fixture(scope='session')
def server_factory(tmp_path_factory):
  factory = ServerFactory(str(tmp_path_factory.mktemp('server-logs')))
  yield factory
  factory.stop_all()


@pytest.fixture(scope='session')
def serving_server(server_factory, tmp_path_factory) -> Server:
  """The conformance server: TF_SERVING_TARGET if set, else our own on fresh fixture models."""
  target = os.environ.get(GRPC_ENV)
  if target:
    with grpc.insecure_channel(target) as channel:
      wait_until_available(
          channel, fixture_models.CONFORMANCE_VERSIONS, 20,
          lambda: (f'{GRPC_ENV}={target} must serve the models written by '
                   '`python -m tests.serving.fixture_models DIR`, started with '
                   '--model_config_file=DIR/models.config '
                   f'{" ".join(fixture_models.CONFORMANCE_FLAGS)}'))
    return Server(target, os.environ.get(REST_ENV) or None, None)
  root = str(tmp_path_factory.mktemp('conformance-models'))
  config = fixture_models.write_conformance_models(root)
  server = server_factory.start(
      ['--model_config_file', config, '--file_system_poll_wait_seconds', '0.2',
       *fixture_models.CONFORMANCE_FLAGS],
      fixture_models.CONFORMANCE_VERSIONS, name='conformance')
  server.model_root = root
  return server


@pytest.fixture(scope='session')
def grpc_channel(serving_server):
  with grpc.insecure_channel(serving_server.grpc_target) as channel:
    yield channel


@pytest.fixture(scope='session')
def prediction_stub(grpc_channel):
  return prediction_service_pb2_grpc.PredictionServiceStub(grpc_channel)


@pytest.fixture(scope='session')
def model_stub(grpc_channel):
  return model_service_pb2_grpc.ModelServiceStub(grpc_channel)


@pytest.fixture
def rest_base(serving_server) -> str:
  """http://host:port of the REST API; skips the test when an external server gave none."""
  if not serving_server.rest_target:
    pytest.skip(f'{GRPC_ENV} is set but {REST_ENV} is not: no REST API to test')
  return f'http://{serving_server.rest_target}'


@pytest.fixture
def own_server(serving_server) -> Server:
  """For ganpipe extensions that tensorflow_model_server does not have (stated per test)."""
  if not serving_server.own:
    pytest.skip(f'tests a ganpipe server extension that tensorflow_model_server lacks; '
                f'{GRPC_ENV} points at an external server')
  return serving_server


@pytest.fixture
def self_signed_certificate(tmp_path):
  """(key.pem, cert.pem) for localhost, made with the openssl command."""
  if shutil.which('openssl') is None:
    pytest.skip('needs the openssl command to make a certificate')
  key, cert = tmp_path / 'key.pem', tmp_path / 'cert.pem'
  subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                  'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
                  '-addext', 'subjectAltName=DNS:localhost', '-keyout', str(key), '-out',
                  str(cert)], check=True, capture_output=True, timeout=30)
  return key, cert


@pytest.fixture
def client_certificate(tmp_path):
  """(ca.pem, client key.pem, client cert.pem): a CA and a client certificate it signed."""
  if shutil.which('openssl') is None:
    pytest.skip('needs the openssl command to make a certificate')
  ca_key, ca_cert = tmp_path / 'ca-key.pem', tmp_path / 'ca.pem'
  key, request, cert = (tmp_path / 'client-key.pem', tmp_path / 'client.csr',
                        tmp_path / 'client.pem')
  ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  for command in (
      ['req', '-x509', *ec, '-days', '1', '-subj', '/CN=test client CA', '-keyout', str(ca_key),
       '-out', str(ca_cert)],
      ['req', '-new', *ec, '-subj', '/CN=client', '-keyout', str(key), '-out', str(request)],
      ['x509', '-req', '-in', str(request), '-CA', str(ca_cert), '-CAkey', str(ca_key),
       '-CAcreateserial', '-days', '1', '-out', str(cert)]):
    subprocess.run(['openssl', *command], check=True, capture_output=True, timeout=30)
  return ca_cert, key, cert
