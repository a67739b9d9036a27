"""The image's entry point: inputs the OSS KFP driver sends untyped, and GCS folder markers."""

import copy
import dataclasses
from typing import Dict, List, Optional

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.types import standard_artifacts

from ganpipe.kubeflow import entrypoint

EXAMPLES_SCHEMA = 'title: tfx.Examples\ntype: object\n'
INPUTS_SPEC = {'artifacts': {'examples': {'artifactType': {'instanceSchema': EXAMPLES_SCHEMA}}},
               'parameters': {'exclude_splits': {'parameterType': 'STRING'}}}


def _executor_input(artifact_type: Optional[dict]) -> dict:
  """An ExecutorInput with one upstream Examples artifact, as a driver hands it over."""
  artifact = {'name': '42', 'uri': '/data/examples', 'metadata': {
      'split_names': '["train", "eval"]', 'display_name': 'examples'}}
  if artifact_type is not None:
    artifact['type'] = artifact_type
  return {'inputs': {'artifacts': {'examples': {'artifacts': [artifact]}},
                     'parameterValues': {'exclude_splits': '[]'}},
          'outputs': {'outputFile': '/tmp/out.json'}}


def _parse_with_tfx(executor_input: dict):
  """What TFX's entry point does with the input artifacts (_run_executor)."""
  parsed = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput(),
                                 ignore_unknown_fields=True)
  return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(parsed.inputs.artifacts, {})


def test_tfx_fails_on_the_untyped_input_the_oss_driver_sends():
  # GetOutputArtifactsByExecutionId (backend/src/v2/metadata/client.go): `Schema: ""`.
  with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):
    _parse_with_tfx(_executor_input({'instanceSchema': ''}))


@pytest.mark.parametrize('artifact_type', [{'instanceSchema': ''}, {}, None],
                         ids=['empty instance schema', 'empty type', 'no type'])
def test_an_untyped_input_gets_its_declared_type_and_tfx_reads_it(artifact_type):
  executor_input = _executor_input(artifact_type)
  assert entrypoint.fill_input_types(executor_input, INPUTS_SPEC) == ['examples']
  [examples] = _parse_with_tfx(executor_input)['examples']
  assert isinstance(examples, standard_artifacts.Examples)
  assert examples.uri == '/data/examples'


def test_a_typed_input_is_left_as_vertex_sent_it():
  vertex = {'schemaTitle': 'tfx.Examples'}
  executor_input = _executor_input(vertex)
  assert entrypoint.fill_input_types(executor_input, INPUTS_SPEC) == []
  assert executor_input['inputs']['artifacts']['examples']['artifacts'][0]['type'] == vertex


def test_an_untyped_input_the_component_does_not_declare_is_named():
  spec = copy.deepcopy(INPUTS_SPEC)
  del spec['artifacts']
  with pytest.raises(ValueError, match="input artifact 'examples' came without a type, and the "
                     'component declares none for it'):
    entrypoint.fill_input_types(_executor_input({'instanceSchema': ''}), spec)


# GCS folder markers: kubeflow/pipelines#13476. TensorFlow's GCS filesystem makes a zero-byte
# `<folder>/` object for every folder; the KFP launcher's DownloadBlob saves one as a file and
# then cannot write the folder's contents under it.

@dataclasses.dataclass
class _Blob:
  name: str
  size: int
  bucket: '_Bucket'

  def delete(self):
    del self.bucket.objects[self.name]


@dataclasses.dataclass
class _Bucket:
  name: str
  objects: Dict[str, int]

  def blob(self, name):
    return _Blob(name, self.objects[name], self)


class _Client:
  """The part of google.cloud.storage.Client the entry point calls, over a dict of objects."""

  def __init__(self, objects: Dict[str, Dict[str, int]]):
    self.buckets = {name: _Bucket(name, dict(found)) for name, found in objects.items()}

  def bucket(self, name):
    return self.buckets[name]

  def list_blobs(self, bucket_name, prefix=''):
    bucket = self.buckets[bucket_name]
    return [_Blob(name, size, bucket) for name, size in sorted(bucket.objects.items())
            if name.startswith(prefix)]


def _saved_model_as_tensorflow_writes_it(key: str) -> Dict[str, int]:
  """What `tf.saved_model.save(model, 'gs://b/<key>')` leaves: markers for every folder."""
  return {f'{key}/': 0, f'{key}/Format-Serving/': 0, f'{key}/Format-Serving/saved_model.pb': 900,
          f'{key}/Format-Serving/variables/': 0,
          f'{key}/Format-Serving/variables/variables.index': 50,
          f'{key}/Format-Serving/assets/': 0}


def test_markers_of_folders_with_contents_are_found_and_empty_folders_kept():
  objects = _saved_model_as_tensorflow_writes_it('run/trainer/1/model')
  objects['run/trainer/1/model-2/'] = 0  # a sibling with the same prefix, not under the artifact
  objects['run/trainer/1/model-2/x'] = 1
  markers = entrypoint.directory_markers(objects.items(), 'run/trainer/1/model')
  assert markers == ['run/trainer/1/model/', 'run/trainer/1/model/Format-Serving/',
                     'run/trainer/1/model/Format-Serving/variables/']


def test_markers_under_the_outputs_are_deleted_and_the_rest_kept():
  key = 'runs/ganpipe/run-1/trainer/5f3e/model'
  client = _Client({'bucket': {**_saved_model_as_tensorflow_writes_it(key),
                               'runs/ganpipe/run-1/other/': 0, 'runs/ganpipe/run-1/other/f': 1}})
  deleted = entrypoint.remove_directory_markers(
      [f'gs://bucket/{key}', '/local/path/not/on/gcs'], client)
  assert deleted == [f'gs://bucket/{key}/', f'gs://bucket/{key}/Format-Serving/',
                     f'gs://bucket/{key}/Format-Serving/variables/']
  remaining = client.buckets['bucket'].objects
  assert f'{key}/Format-Serving/saved_model.pb' in remaining
  assert f'{key}/Format-Serving/assets/' in remaining  # an empty folder: nothing to break
  assert 'runs/ganpipe/run-1/other/' in remaining  # not this task's output
  # What is left downloads as the launcher's DownloadBlob writes it: no object is both a file
  # and a folder above another.
  names: List[str] = sorted(remaining)
  assert not [a for a in names for b in names if a != b and b.startswith(a.rstrip('/') + '/')
              and a.startswith(key)]


def test_outputs_off_gcs_need_no_client():
  assert entrypoint.remove_directory_markers(['/mnt/ganpipe/serving/x'], client=None) == []
