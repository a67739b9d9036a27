"""Reliability of ganpipe's own model server: bad versions, hot swaps, reloads and warmup.

These need the filesystem the server reads and its process, so they always start ganpipe's server
(never TF_SERVING_TARGET). Semantics expected are TF Serving's.
"""

import collections
import os
import shutil
import threading
import time
from typing import Dict, List, Optional

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import predict_pb2

from tests.serving import fixture_models as fm
from tests.serving.stubs import POLL, Client, half_plus_two, model_status, wait_for

pytestmark = pytest.mark.e2e

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
CORRUPT = 'corrupt_target'
HOT_SWAP = 'hot_swap'
WARM = 'warm'
LATEST_TWO = 'latest_two'
PINNED = 'pinned'
LABELLED = 'labelled'
ADDED = 'added'


@pytest.fixture(scope='module')
def swap_server(server_factory, tmp_path_factory):
  """One server for the tests that change model folders; each test owns one model."""
  root = str(tmp_path_factory.mktemp('reliability-models'))
  for name in (CORRUPT, HOT_SWAP, WARM, LATEST_TWO, PINNED, LABELLED):
    fm.push_version(os.path.join(root, name), 1, half_plus_two(1))
  fm.push_version(os.path.join(root, LABELLED), 2, half_plus_two(2))
  config_path = os.path.join(root, fm.CONFIG_FILE)
  fm.write_config(config_path, _base_config(root))
  versions = {CORRUPT: [1], HOT_SWAP: [1], WARM: [1], LATEST_TWO: [1], PINNED: [1],
              LABELLED: [1, 2]}
  server = server_factory.start(['--model_config_file', config_path, *POLL], versions,
                                name='reliability')
  server.model_root = root
  yield server
  assert server.process.terminate() == 0, server.describe()


def _base_config(root: str, labels: Optional[Dict[str, int]] = None):
  """The swap server's config; `labels` go to LABELLED. Reloads must repeat all of it."""
  def path(name):
    return os.path.join(root, name)
  return fm.server_config(
      [fm.model_config(name, path(name)) for name in (CORRUPT, HOT_SWAP, WARM)] +
      [fm.model_config(LATEST_TWO, path(LATEST_TWO), num_latest=2),
       fm.model_config(PINNED, path(PINNED), policy='specific', versions=[1]),
       fm.model_config(LABELLED, path(LABELLED), policy='all', labels=labels)])


def _reload(client: Client, config) -> None:
  response = client.models.HandleReloadConfigRequest(
      model_management_pb2.ReloadConfigRequest(config=config), timeout=120)
  assert response.status.error_code == 0, response


@pytest.fixture
def client(swap_server):
  connection = Client(swap_server.grpc_target)
  yield connection
  connection.close()


@pytest.fixture
def restore_config(swap_server, client):
  """Reloads the base config after a test that changes it, so a failure stays in its test."""
  yield
  _reload(client, _base_config(swap_server.model_root))


def test_corrupt_version_is_reported_and_the_previous_one_keeps_serving(swap_server, client):
  base = os.path.join(swap_server.model_root, CORRUPT)
  fm.push_version(base, 2, fm.build_corrupt)

  answers = set()

  def failed_load_reported() -> bool:
    # Requests keep being answered, by version 1, while version 2 fails to load.
    version, y = client.y(CORRUPT, 4.0)
    answers.add((version, y[0][0]))
    states = model_status(client.models, CORRUPT)
    return 2 in states and states[2].state == END

  wait_for(failed_load_reported, 30,
           lambda: f'version 2 to end in error; status: {model_status(client.models, CORRUPT)}')
  states = model_status(client.models, CORRUPT)
  # The load error's own code and message, as TF Serving reports them: ReadBinaryProto's
  # DATA_LOSS (TensorFlow's core/platform/env.cc), not UNKNOWN.
  assert states[2].status.error_code == grpc.StatusCode.DATA_LOSS.value[0], states[2]
  assert states[2].status.error_message.startswith("Can't parse "), states[2]
  assert states[2].status.error_message.endswith('/2/saved_model.pb as binary proto'), states[2]
  assert states[1].state == AVAILABLE and states[1].status.error_code == 0, states[1]
  assert answers == {(1, fm.half_plus_two_y(1, 4.0))}, answers
  assert client.y(CORRUPT, 4.0) == (1, [[fm.half_plus_two_y(1, 4.0)]])

  # A good version after the bad one still loads and takes over.
  fm.push_version(base, 3, half_plus_two(3))
  wait_for(lambda: client.y(CORRUPT, 4.0)[0] == 3, 30,
           lambda: f'version 3 to serve; status: {model_status(client.models, CORRUPT)}')
  assert client.y(CORRUPT, 4.0) == (3, [[fm.half_plus_two_y(3, 4.0)]])


def test_hot_swap_under_load_fails_no_request(swap_server):
  threads, per_thread, swap_after = 8, 2000, 2000
  errors: List[str] = []
  wrong: List[str] = []
  seen = collections.Counter()
  done = [0]
  lock = threading.Lock()
  half_way = threading.Event()

  def work(worker: int) -> None:
    connection = Client(swap_server.grpc_target)
    try:
      for i in range(per_thread):
        x = float((worker * per_thread + i) % 1024)
        try:
          version, y = connection.y(HOT_SWAP, x)
        except grpc.RpcError as error:
          with lock:
            errors.append(f'{error.code().name}: {error.details()}')
          continue
        with lock:
          seen[version] += 1
          if version not in (1, 2) or y != [[fm.half_plus_two_y(version, x)]]:
            wrong.append(f'x={x}: version {version} answered {y}')
          done[0] += 1
          if done[0] == swap_after:
            half_way.set()
    finally:
      connection.close()

  workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for worker in workers:
    worker.start()
  started = half_way.wait(timeout=120)
  fm.push_version(os.path.join(swap_server.model_root, HOT_SWAP), 2, half_plus_two(2))
  for worker in workers:
    worker.join(timeout=600)
  assert started, f'fewer than {swap_after} requests were answered; errors: {errors[:5]}'
  assert not any(worker.is_alive() for worker in workers), 'clients still running after 600 s'
  assert not errors, f'{len(errors)} failed requests, e.g. {errors[:5]}'
  assert not wrong, f'{len(wrong)} wrong answers, e.g. {wrong[:5]}'
  assert sum(seen.values()) == threads * per_thread
  assert seen[1] > 0 and seen[2] > 0, f'answers by version: {dict(seen)}'

  # Under the default policy (latest 1) version 1 is then unloaded, and ends without error.
  client = Client(swap_server.grpc_target)
  try:
    wait_for(lambda: model_status(client.models, HOT_SWAP)[1].state == END, 30,
             lambda: f'version 1 to unload; status: {model_status(client.models, HOT_SWAP)}')
    assert model_status(client.models, HOT_SWAP)[1].status.error_code == 0
    with pytest.raises(grpc.RpcError) as unloaded:
      client.y(HOT_SWAP, 1.0, version=1)
    assert unloaded.value.code() == grpc.StatusCode.NOT_FOUND, unloaded.value.details()
  finally:
    client.close()


def test_reload_config_adds_and_removes_a_model(swap_server, client, restore_config):
  root = swap_server.model_root
  fm.push_version(os.path.join(root, ADDED), 1, half_plus_two(1))
  with_added = _base_config(root)
  with_added.model_config_list.config.append(fm.model_config(ADDED, os.path.join(root, ADDED)))

  _reload(client, with_added)
  # TF Serving's ReloadConfig returns only once the added models are AVAILABLE.
  assert model_status(client.models, ADDED)[1].state == AVAILABLE
  assert client.y(ADDED, 2.0) == (1, [[fm.half_plus_two_y(1, 2.0)]])

  _reload(client, _base_config(root))

  def removed() -> bool:
    try:
      client.y(ADDED, 2.0)
    except grpc.RpcError as error:
      assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
      return True
    return False

  wait_for(removed, 30, lambda: f'{ADDED} to be gone; status: {model_status(client.models, ADDED)}')
  # Its version stays listed, END, as TF Serving's ServableStateMonitor keeps it.
  assert model_status(client.models, ADDED)[1].state == END
  # The models kept in the config are untouched.
  version, y = client.y(HOT_SWAP, 2.0)
  assert y == [[fm.half_plus_two_y(version, 2.0)]]
  assert model_status(client.models, WARM)[1].state == AVAILABLE


def test_reload_config_moves_version_labels(swap_server, client, restore_config):
  root = swap_server.model_root
  _reload(client, _base_config(root, labels={'live': 1}))
  assert client.y(LABELLED, 2.0, label='live') == (1, [[fm.half_plus_two_y(1, 2.0)]])
  _reload(client, _base_config(root, labels={'live': 2}))
  assert client.y(LABELLED, 2.0, label='live') == (2, [[fm.half_plus_two_y(2, 2.0)]])

  # TF Serving refuses a label on a version that is not available, and keeps the old labels.
  with pytest.raises(grpc.RpcError) as refused:
    client.models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=_base_config(root, labels={'live': 7})),
        timeout=120)
  assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
  assert client.y(LABELLED, 2.0, label='live') == (2, [[fm.half_plus_two_y(2, 2.0)]])

  _reload(client, _base_config(root))
  with pytest.raises(grpc.RpcError) as unknown:
    client.y(LABELLED, 2.0, label='live')
  assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT, unknown.value.details()


@pytest.mark.parametrize('break_config, pattern', [
    pytest.param(lambda c: c.model_config_list.config.append(c.model_config_list.config[0]),
                 CORRUPT, id='duplicate-name'),
    pytest.param(lambda c: setattr(c.model_config_list.config[0], 'base_path', 'relative/path'),
                 'relative/path', id='relative-base-path'),
])
def test_reload_config_rejects_a_bad_config_and_keeps_serving(swap_server, client, restore_config,
                                                              break_config, pattern):
  config = _base_config(swap_server.model_root)
  break_config(config)
  with pytest.raises(grpc.RpcError) as refused:
    client.models.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=120)
  assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
  assert pattern in refused.value.details()
  for name in (CORRUPT, HOT_SWAP, WARM, LATEST_TWO, PINNED, LABELLED):
    version, y = client.y(name, 2.0)
    assert y == [[fm.half_plus_two_y(version, 2.0)]], name


def test_version_policies_latest_two_and_specific(swap_server, client):
  root = swap_server.model_root
  fm.push_version(os.path.join(root, LATEST_TWO), 2, half_plus_two(2))
  wait_for(lambda: {v for v, s in model_status(client.models, LATEST_TWO).items()
                    if s.state == AVAILABLE} == {1, 2}, 30,
           lambda: f'versions 1 and 2 of {LATEST_TWO}: {model_status(client.models, LATEST_TWO)}')
  # PINNED serves only version 1: a version 2 on disk must never load. It is pushed before
  # LATEST_TWO's version 3, so once that one is in, the server has seen PINNED's too.
  fm.push_version(os.path.join(root, PINNED), 2, half_plus_two(2))
  fm.push_version(os.path.join(root, LATEST_TWO), 3, half_plus_two(3))
  wait_for(lambda: {v for v, s in model_status(client.models, LATEST_TWO).items()
                    if s.state == AVAILABLE} == {2, 3}, 30,
           lambda: f'versions 2 and 3 of {LATEST_TWO}: {model_status(client.models, LATEST_TWO)}')
  wait_for(lambda: model_status(client.models, LATEST_TWO)[1].state == END, 30,
           lambda: f'{LATEST_TWO} version 1 to unload: {model_status(client.models, LATEST_TWO)}')
  assert client.y(LATEST_TWO, 2.0) == (3, [[fm.half_plus_two_y(3, 2.0)]])
  assert client.y(LATEST_TWO, 2.0, version=2) == (2, [[fm.half_plus_two_y(2, 2.0)]])
  with pytest.raises(grpc.RpcError) as unloaded:
    client.y(LATEST_TWO, 2.0, version=1)
  assert unloaded.value.code() == grpc.StatusCode.NOT_FOUND, unloaded.value.details()

  time.sleep(1.0)  # five more polls of the base paths
  pinned = model_status(client.models, PINNED)
  assert pinned[1].state == AVAILABLE and (2 not in pinned or pinned[2].state != AVAILABLE), pinned
  assert client.y(PINNED, 2.0) == (1, [[fm.half_plus_two_y(1, 2.0)]])
  with pytest.raises(grpc.RpcError) as excluded:
    client.y(PINNED, 2.0, version=2)
  assert excluded.value.code() == grpc.StatusCode.NOT_FOUND, excluded.value.details()


def test_warmup_runs_before_the_version_is_available(swap_server, client, tmp_path):
  markers = tmp_path / 'markers'
  markers.mkdir()
  warmup_xs = [1001, 1002, 1003]
  fm.push_version(os.path.join(swap_server.model_root, WARM), 2,
                  lambda d: fm.build_warmup_probe(d, str(markers), warmup_xs, seconds=0.3))

  seen_states = []

  def available() -> bool:
    state = model_status(client.models, WARM).get(2)
    seen_states.append(None if state is None else state.state)
    return state is not None and state.state == AVAILABLE

  deadline = time.monotonic() + 60
  while not available():
    assert time.monotonic() < deadline, f'version 2 never AVAILABLE; states seen: {seen_states}'
    time.sleep(0.02)
  # Listed at the first sight of AVAILABLE: every warmup request must already have run.
  ran = sorted(os.listdir(markers))
  assert ran == [os.path.basename(fm.marker_path(str(markers), x)) for x in warmup_xs], ran
  assert client.y(WARM, 5.0, version=2) == (2, [[5.0]])
  assert os.path.exists(fm.marker_path(str(markers), 5))


def test_a_failing_warmup_fails_the_load(swap_server, client):
  serving_version, _ = client.y(WARM, 1.0)

  def build(export_dir: str) -> None:
    fm.build_half_plus_two(export_dir, 10)
    # TF Serving fails the load when a warmup request fails; this one names no real input.
    request = predict_pb2.PredictRequest()
    request.inputs['not_an_input'].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
    fm.write_warmup_requests(export_dir, [request])

  folder = fm.push_version(os.path.join(swap_server.model_root, WARM), 10, build)
  try:
    wait_for(lambda: 10 in model_status(client.models, WARM) and
             model_status(client.models, WARM)[10].state == END, 30,
             lambda: f'version 10 to end in error; status: {model_status(client.models, WARM)}')
    assert model_status(client.models, WARM)[10].status.error_code != 0
    assert client.y(WARM, 1.0)[0] == serving_version
  finally:
    # Version 10 would outrank any later version of WARM that another test pushes.
    shutil.rmtree(folder)
