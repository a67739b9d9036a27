"""End to end: `ganpipe run` on the small configuration, a cached re-run, and a halt on anomalies."""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow.core.protobuf import config_pb2
from tfx.orchestration import metadata as tfx_metadata

from ganpipe.serving import config as serving_config
from tests import image_data

pytestmark = pytest.mark.e2e

GANPIPE = os.path.join(os.path.dirname(sys.executable), 'ganpipe')


def _ganpipe(root, *flags, timeout=1200, command='run'):
  """Runs the CLI on folders under `root`, with its temporary files under `root/tmp`."""
  paths = ['--paths.pipeline_root', str(root / 'pipeline'),
           '--paths.metadata_path', str(root / 'metadata.sqlite'),
           '--paths.serving_root', str(root / 'serving'), '--paths.hub_root', str(root / 'hub')]
  (root / 'tmp').mkdir(exist_ok=True)
  return subprocess.run([GANPIPE, command, '--small', *paths, *flags], capture_output=True,
                        text=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL,
                        env={**os.environ, 'TMPDIR': str(root / 'tmp')})


def _runs(metadata_path):
  """[{node_id: (state, sorted output artifact ids)}] for each run, oldest first."""
  store = metadata_store.MetadataStore(
      tfx_metadata.sqlite_metadata_connection_config(str(metadata_path)))
  runs = sorted(store.get_contexts_by_type('pipeline_run'), key=lambda c: c.id)
  result = []
  for run in runs:
    nodes = {}
    for execution in store.get_executions_by_context(run.id):
      node = next(c.name.split('.', 1)[1] for c in store.get_contexts_by_execution(execution.id)
                  if c.name.startswith('ganpipe.'))
      outputs = sorted(e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
                       if e.type == metadata_store_pb2.Event.OUTPUT)
      nodes[node] = (execution.last_known_state, outputs)
    result.append(nodes)
  return result


def _tracebacks(stderr):
  """Traceback blocks in stderr, except TF 2.16's AtomicFunction.__del__ error.

  That one is printed by Beam worker processes as they exit, where the CLI cannot install
  its hook (`console._ignore_tensorflow_finalizer_errors`); it is not about the run.
  """
  blocks = stderr.split('Traceback (most recent call last):')[1:]
  return [b for b in blocks
          if not (b.count('File "') == 1 and 'atomic_function.py", line 291, in __del__' in b)]


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('digits')
  first = _ganpipe(root)
  # `make demo` runs `ganpipe demo`: the (now cached) pipeline, then serving and gRPC queries.
  second = _ganpipe(root, command='demo')
  return root, first, second


def test_demo_serves_the_pushed_models_and_queries_them_over_grpc(two_runs):
  root, _, second = two_runs
  assert second.returncode == 0, second.stdout + second.stderr
  assert re.search(r'classifier version \d+: AVAILABLE', second.stdout), second.stdout
  assert re.search(r'generator version \d+: AVAILABLE', second.stdout), second.stdout
  right = re.search(r'(\d+)/8 right', second.stdout)
  assert right and int(right.group(1)) >= 6, second.stdout
  grid = tf.io.decode_png(tf.io.read_file(str(root / 'generated_grid.png'))).numpy()
  # 16 8x8 images, each scaled 8x to be seen (nearest-neighbour), 1px gaps.
  assert grid.shape == (4 * 65 + 1, 4 * 65 + 1, 1) and grid.std() > 0
  assert (grid[1:65, 1:65].reshape(8, 8, 8, 8)[:, :1, :, :1] ==
          grid[1:65, 1:65].reshape(8, 8, 8, 8)).all()
  assert 'Server stopped.' in second.stdout


def test_runs_leave_no_copy_of_tfx_in_the_temporary_folder(two_runs):
  """TFX's Beam executors package TFX for remote workers (build_ephemeral_package in
  tfx/utils/dependency_utils.py), 52 MB a time that is never deleted; the local runner never
  reads it (components/beam_staging.py)."""
  root, first, second = two_runs
  assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
  left = [os.path.join(folder, name) for folder, _, names in os.walk(root / 'tmp')
          for name in names if 'tfx_ephemeral' in name or name == 'setup.py']
  assert not left, left[:5]


def test_first_run_pushes_a_blessed_classifier(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stdout + first.stderr
  assert 'classifier: sparse_categorical_accuracy' in first.stdout
  assert ', blessed' in first.stdout
  assert 'data: 1797 images (train ' in first.stdout and '; 0 rejected' in first.stdout
  assert len(glob.glob(str(root / 'serving' / 'classifier' / '*' / 'saved_model.pb'))) == 1


def test_first_run_trains_evaluates_and_pushes_the_generator(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  assert 'generator: frechet_classifier_distance' in first.stdout
  assert 'real_frechet_classifier_distance' in first.stdout
  pushed = glob.glob(str(root / 'serving' / 'generator' / '*'))
  assert len(pushed) == 1, first.stdout
  generator = tf.saved_model.load(pushed[0])
  out = generator.signatures['generate'](num_images=tf.constant(4), seed=tf.constant(7, tf.int64))
  assert out['images'].shape == (4, 8, 8, 1) and out['png_bytes'].shape == (4,)
  grids = glob.glob(str(root / 'pipeline' / 'gan_trainer' / 'model_run' / '*' / 'samples' /
                        'epoch_0005.png'))
  assert len(grids) == 1
  samples = glob.glob(str(root / 'pipeline' / 'generator_evaluator' / 'evaluation' / '*' /
                          'samples.png'))
  assert len(samples) == 1


def test_pushes_are_infra_validated_with_warmup_and_listed_in_models_config(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  assert first.stdout.count('infra validation: passed') == 2, first.stdout
  for model in ('classifier', 'generator'):
    (version,) = glob.glob(str(root / 'serving' / model / '*'))
    assert os.path.getsize(os.path.join(version, 'assets.extra', 'tf_serving_warmup_requests'))
  config = serving_config.read_model_server_config(str(root / 'serving' / 'models.config'))
  assert sorted(m.name for m in config.model_config_list.config) == ['classifier', 'generator']


def test_the_generator_is_published_as_a_tf_hub_module(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  module = root / 'hub' / 'ganpipe' / 'generator' / '1'
  assert f'published as a TF Hub module to {module}' in first.stdout, first.stdout
  assert (root / 'hub' / 'ganpipe' / 'generator' / '1.tar.gz').exists()
  doc = (root / 'hub' / 'ganpipe' / 'generator' / '1.md').read_text()
  assert doc.startswith('# Module ganpipe/generator/1') and 'format: saved_model_2' in doc
  assert (root / 'hub' / 'ganpipe' / 'ganpipe.md').read_text().startswith('# Publisher ganpipe')
  assert not (module / 'README.md').exists()  # the folder holds the SavedModel only
  hub_module = hub.load(str(module))
  (pushed,) = glob.glob(str(root / 'serving' / 'generator' / '*'))
  noise = tf.random.stateless_normal([3, 64], seed=[1, 2])
  np.testing.assert_allclose(
      hub_module(noise, training=False).numpy(),
      tf.saved_model.load(pushed).signatures['serving_default'](noise=noise)['images'].numpy(),
      atol=1e-6)


def test_lineage_traces_each_pushed_model_back_to_the_ingested_images(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  (classifier,) = glob.glob(str(root / 'serving' / 'classifier' / '*'))
  module = root / 'hub' / 'ganpipe' / 'generator' / '1'
  wanted = {classifier: {'classifier_pusher', 'classifier_infra_validator', 'classifier_evaluator',
                         'classifier_trainer', 'transform', 'schema_gen', 'statistics_gen',
                         'image_example_gen'},
            str(module): {'hub_publisher', 'generator_evaluator', 'generator_infra_validator',
                          'gan_trainer', 'classifier_trainer', 'transform', 'schema_gen',
                          'statistics_gen', 'image_example_gen'}}
  for target, nodes in wanted.items():
    result = _ganpipe(root, target, '--json', command='lineage', timeout=300)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {e['node'] for e in found['executions'].values()} == nodes
    assert len({e['run'] for e in found['executions'].values()}) == 1  # the first run's
  text = _ganpipe(root, classifier, command='lineage', timeout=300).stdout
  assert text.startswith(f'Lineage of {classifier} (run ')
  assert 'made by image_example_gen' in text and 'source=digits' in text


def test_a_published_module_is_published_again_under_another_root(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  module = root / 'hub' / 'ganpipe' / 'generator' / '1'
  result = _ganpipe(root, str(module), '--to', str(root / 'shared'), '--publish.hub_asset_url',
                    'https://models.example.org/shared', command='publish', timeout=300)
  assert result.returncode == 0, result.stderr
  promoted = root / 'shared' / 'ganpipe' / 'generator' / '1'
  assert result.stdout.strip() == f'Published version 1 to {promoted} and {promoted}.tar.gz'
  noise = tf.random.stateless_normal([2, 64], seed=[3, 4])
  np.testing.assert_allclose(hub.load(str(promoted))(noise).numpy(),
                             hub.load(str(module))(noise).numpy(), atol=1e-6)
  assert ('<!-- asset-path: https://models.example.org/shared/ganpipe/generator/1.tar.gz -->' in
          (root / 'shared' / 'ganpipe' / 'generator' / '1.md').read_text())


def test_ganpipe_serve_classify_and_generate_on_the_pushed_models(two_runs, tmp_path):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  server = subprocess.Popen(
      [GANPIPE, 'serve', '--port', '0', '--model_config_file', str(root / 'serving' /
                                                                   'models.config')],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
  try:
    line = server.stdout.readline()
    match = re.search(r'Running gRPC ModelServer at (\S+) ', line)
    assert match, line + server.stderr.read()
    target = match.group(1)
    pngs = []
    for i, record in enumerate(tf.data.TFRecordDataset(
        glob.glob(str(root / 'pipeline' / 'image_example_gen' / 'examples' / '*' /
                      'Split-eval' / '*.gz')), compression_type='GZIP').take(4)):
      example = tf.train.Example.FromString(record.numpy())
      path = tmp_path / f'{i}.png'
      path.write_bytes(example.features.feature['image'].bytes_list.value[0])
      pngs.append((str(path), example.features.feature['label_name'].bytes_list.value[0].decode()))
    classify = subprocess.run([GANPIPE, 'classify', '--target', target, '--json',
                               *[p for p, _ in pngs]], capture_output=True, text=True, check=False,
                              timeout=120, stdin=subprocess.DEVNULL)
    assert classify.returncode == 0, classify.stderr
    answers = json.loads(classify.stdout)
    assert [a['path'] for a in answers] == [p for p, _ in pngs]
    assert sum(a['class_name'] == label for a, (_, label) in zip(answers, pngs)) >= 3
    grid_path = tmp_path / 'grid.png'
    generate = subprocess.run([GANPIPE, 'generate', '--target', target, '-n', '9', '--seed', '7',
                               '--out', str(grid_path)], capture_output=True, text=True,
                              check=False, timeout=120, stdin=subprocess.DEVNULL)
    assert generate.returncode == 0, generate.stderr
    grid = tf.io.decode_png(tf.io.read_file(str(grid_path))).numpy()
    assert grid.shape[:2] == (3 * 65 + 1, 3 * 65 + 1) and grid.std() > 0  # scaled 8x
  finally:
    server.terminate()
    assert server.wait(timeout=60) == 0


def test_pushed_model_classifies_held_out_pngs(two_runs):
  root, first, _ = two_runs
  assert first.returncode == 0, first.stderr
  model_dir = glob.glob(str(root / 'serving' / 'classifier' / '*'))[0]
  model = tf.saved_model.load(model_dir)
  eval_files = glob.glob(str(root / 'pipeline' / 'image_example_gen' / 'examples' / '*' /
                             'Split-eval' / '*.gz'))
  records = [r.numpy() for r in tf.data.TFRecordDataset(eval_files, compression_type='GZIP')]
  examples = [tf.train.Example.FromString(r) for r in records]
  pngs = [e.features.feature['image'].bytes_list.value[0] for e in examples]
  labels = np.array([e.features.feature['label'].int64_list.value[0] for e in examples])
  names = [e.features.feature['label_name'].bytes_list.value[0] for e in examples]

  out = model.signatures['serving_default'](images=tf.constant(pngs))
  probabilities = out['probabilities'].numpy()
  class_ids = out['class_ids'].numpy()
  assert probabilities.shape == (len(pngs), 10)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
  accuracy = float(np.mean(class_ids == labels))
  assert accuracy > 0.85, accuracy
  predicted_names = out['class_names'].numpy()
  for class_id, predicted, label, name in zip(class_ids, predicted_names, labels, names):
    assert predicted == str(class_id).encode()  # digits are named by their class id
    if class_id == label:
      assert predicted == name

  # One image as a scalar, as TF Serving's resnet_client_grpc.py sends a JPEG, fed to the C++
  # Session as TF Serving feeds it, with no shape check (Session.run's own is Python's): the
  # graph reshapes it to a batch of one.
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    signature = tf.compat.v1.saved_model.loader.load(
        session, ['serve'], model_dir).signature_def['serving_default']
    options = config_pb2.CallableOptions(feed=[signature.inputs['images'].name],
                                         fetch=[signature.outputs['probabilities'].name])
    run = session._make_callable_from_options(options)  # pylint: disable=protected-access
    (single,) = run(np.array(pngs[0], dtype=object))
  np.testing.assert_allclose(single, probabilities[:1], atol=1e-5)

  from_examples = model.signatures['serving_examples'](examples=tf.constant(records))
  np.testing.assert_allclose(from_examples['probabilities'].numpy(), probabilities, atol=1e-6)


def test_rerun_is_served_from_the_cache(two_runs):
  root, first, second = two_runs
  assert first.returncode == 0 and second.returncode == 0, second.stderr
  assert 'served from the cache' in second.stdout
  runs = _runs(root / 'metadata.sqlite')
  assert len(runs) == 2
  first_run, second_run = runs
  # The first run had no blessed model, so no drift baseline; the second compares with the
  # statistics of the run that trained it. That is a new input, so the drift check and the gate
  # after it run again (and find no drift); every other component is served from the cache.
  measured_again = {'drift_validator', 'example_validation_gate'}
  for node, (state, outputs) in second_run.items():
    if node.endswith('_resolver'):
      continue  # resolvers resolve again on every run; they have no cache
    if node in measured_again:
      assert state == metadata_store_pb2.Execution.COMPLETE, node
      continue
    assert state == metadata_store_pb2.Execution.CACHED, node
    assert outputs == first_run[node][1], node
  assert measured_again <= set(second_run)
  assert 'drift: span 0 vs span 0:' in second.stdout and 'no baseline' in first.stdout
  assert len(glob.glob(str(root / 'serving' / 'classifier' / '*'))) == 1
  assert len(glob.glob(str(root / 'serving' / 'generator' / '*'))) == 1


def test_planted_anomaly_stops_before_the_trainer(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data / 'train'), {'digit_0': 15, 'digit_1': 15})
  # The test split holds a class the training data has never seen: label 2 is out of domain.
  image_data.write_class_folders(str(data / 'test'),
                                 {'digit_0': 5, 'digit_1': 5, 'digit_2': 5}, offset=500)
  result = _ganpipe(tmp_path, '--runner', 'local', '--data.dataset', 'folder',
                    '--data.data_dir', str(data), '--data.image_size', '8,8',
                    '--data.channels', '1')
  assert result.returncode == 1, result.stdout + result.stderr
  error_lines = [l for l in result.stderr.splitlines() if l.startswith('ganpipe: error:')]
  assert len(error_lines) == 1
  assert 'example_validation_gate failed' in error_lines[0]
  assert 'eval/label: Out-of-range values' in error_lines[0]
  assert 'eval/label_name: Unexpected string values' in error_lines[0]
  assert 'digit_2' in error_lines[0]
  assert _tracebacks(result.stderr) == []
  summary = result.stdout[result.stdout.index('Run '):]
  for trainer in ('classifier_trainer', 'gan_trainer'):
    assert re.search(rf'{trainer}\s+not run', summary), summary
  assert not os.path.exists(tmp_path / 'serving' / 'classifier')
