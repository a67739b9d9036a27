"""The examples writer: what TFX's WriteSplit writes, loaded by Beam workers without TFX's
components (`ganpipe/components/image_example_gen/executor.py`, `_write_examples`)."""

import os
import pickle
import re
import subprocess
import sys

import apache_beam as beam
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.testing import util as beam_util
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.components.util import tfxio_utils
from tfx.proto import example_gen_pb2

from ganpipe.components.image_example_gen import executor
from tests.components.image_example_gen import executor_harness as harness

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_tfx_reads_the_splits_as_it_reads_its_own_example_gens(tmp_path):
  result = harness.run(tmp_path, source='digits', image_shape=(8, 8, 1))
  examples = result.examples
  # As base_example_gen_executor.py sets them.
  assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
  assert examples_utils.get_file_format(examples) == 'tfrecords_gzip'
  for split, expected in (('train', 1438), ('eval', 359)):
    folder = os.path.join(examples.uri, f'Split-{split}')
    names = os.listdir(folder)
    assert names and all(re.fullmatch(
        rf'{write_split.DEFAULT_TF_RECORD_FILE_NAME}-\d{{5}}-of-\d{{5}}\.gz', n) for n in names)
    # TFX's own reader for an Examples artifact, as StatisticsGen and Transform read it.
    factory = tfxio_utils.get_tfxio_factory_from_artifact([examples], ['test'])
    tfxio = factory([os.path.join(folder, '*')])
    with beam.Pipeline() as pipeline:
      counted = (pipeline | tfxio.BeamSource() | beam.Map(lambda batch: batch.num_rows)
                 | beam.CombineGlobally(sum))
      beam_util.assert_that(counted, beam_util.equal_to([expected]))
  assert len(result.splits['train']) == 1438 and len(result.splits['eval']) == 359


_UNPICKLE_LIKE_A_WORKER = '''
import pickle, sys
from apache_beam.internal import pickler
for payload in pickle.load(open(sys.argv[1], 'rb')):
  pickler.loads(payload)
print(sorted(name for name in sys.modules if name.startswith('tfx.components')))
'''


def test_beam_workers_load_the_ingestion_pipeline_without_tfx_components(tmp_path, monkeypatch):
  """A worker unpickles every DoFn of its stages: none may live under `tfx.components`, whose
  package imports every TFX component (8.6 s of each worker's start before this change)."""
  captured = []

  class CapturingPipeline(beam.Pipeline):
    def run(self, test_runner_api='AUTO'):
      captured.append(self.to_runner_api())
      return super().run(test_runner_api)

  def make_pipeline(self):
    return CapturingPipeline(argv=self._beam_pipeline_args)

  monkeypatch.setattr(executor.Executor, '_make_beam_pipeline', make_pipeline)
  harness.run(tmp_path, source='digits', image_shape=(8, 8, 1))
  payloads = []
  for transform in captured[0].components.transforms.values():
    if transform.spec.urn == 'beam:transform:pardo:v1':
      pardo = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
      if pardo.do_fn.urn == python_urns.PICKLED_DOFN_INFO:
        payloads.append(pardo.do_fn.payload)
  assert len(payloads) > 10
  with open(tmp_path / 'payloads.pkl', 'wb') as f:
    pickle.dump(payloads, f)
  done = subprocess.run([sys.executable, '-c', _UNPICKLE_LIKE_A_WORKER,
                         str(tmp_path / 'payloads.pkl')], capture_output=True, text=True,
                        timeout=300, env={**os.environ, 'PYTHONPATH': _ROOT}, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.strip().splitlines()[-1] == '[]'
