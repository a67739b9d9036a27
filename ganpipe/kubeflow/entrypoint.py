"""The pipeline image's entry point: TFX's Kubeflow V2 executor, given what the KFP driver passes.

Two things stand between TFX 1.16's `kubeflow_v2_run_executor` and the open-source KFP backend:

- **Untyped input artifacts.** The OSS driver reads an upstream task's outputs back from ML
  Metadata and hands each over with an empty `instanceSchema` (`Schema: ""` in
  GetOutputArtifactsByExecutionId, backend/src/v2/metadata/client.go; ToRuntimeArtifact sets it
  as the type). TFX imports an input's artifact class from that type
  (`kubeflow_v2_entrypoint_utils._retrieve_class_path`) and fails. The 2.1.0 spec passes each
  component's input definitions in `--json_serialized_inputs_spec_args`, with the type each
  artifact input was declared with: an input that arrives without one gets it from there.
  Vertex AI's driver sends the types, which are then left as they are.
- **GCS directory markers.** TensorFlow's GCS filesystem leaves a zero-byte `dir/` object for
  every folder it makes. The KFP launcher downloads a task's inputs before the task runs, saves
  such a marker as a file, and then cannot write the folder's contents under it
  (kubeflow/pipelines#13476; DownloadBlob in backend/src/v2/objectstore/object_store.go). After
  the executor, the markers of non-empty folders under this task's gs:// outputs are deleted;
  the folders stay, as the objects under them.

Beam executors here also skip the copy of TFX that TFX packages for remote Beam workers: the
pod's Beam runs on the local FnApiRunner, which never reads it (components/beam_staging.py).
"""

import json
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from absl import app
from absl import logging
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

from ganpipe.components import beam_staging

GCS = 'gs://'


def is_untyped(artifact: Dict[str, Any]) -> bool:
  """Whether a RuntimeArtifact (as JSON) came without a type, as the OSS driver sends them."""
  artifact_type = artifact.get('type') or {}
  return not artifact_type.get('schemaTitle') and not (
      artifact_type.get('instanceSchema') or '').strip()


def fill_input_types(executor_input: Dict[str, Any],
                     inputs_spec: Dict[str, Any]) -> List[str]:
  """Gives each untyped input artifact the type its component declares for that input.

  Args:
    executor_input: the ExecutorInput as JSON; changed in place.
    inputs_spec: the component's `inputDefinitions` as JSON (`--json_serialized_inputs_spec_args`).

  Returns:
    The input keys that were given their declared type.

  Raises:
    ValueError: an untyped input that the component does not declare.
  """
  declared = inputs_spec.get('artifacts', {})
  filled = []
  for key, artifact_list in executor_input.get('inputs', {}).get('artifacts', {}).items():
    untyped = [a for a in artifact_list.get('artifacts', []) if is_untyped(a)]
    if not untyped:
      continue
    artifact_type = declared.get(key, {}).get('artifactType')
    if not artifact_type:
      raise ValueError(f'input artifact {key!r} came without a type, and the component declares '
                       f'none for it (it declares {sorted(declared) or "no artifact inputs"})')
    for artifact in untyped:
      artifact['type'] = dict(artifact_type)
    filled.append(key)
  return filled


def split_gcs_uri(uri: str) -> Tuple[str, str]:
  """`gs://bucket/a/b` -> (`bucket`, `a/b`)."""
  bucket, _, key = uri[len(GCS):].partition('/')
  return bucket, key.rstrip('/')


def directory_markers(names_and_sizes: Iterable[Tuple[str, int]], prefix: str) -> List[str]:
  """The zero-byte folder markers under `prefix` (or at it) that have objects below them.

  A marker with nothing below it is an empty folder's only trace and is kept: the launcher
  downloads it as an empty file, with nothing to write under it.
  """
  under = sorted((name, size) for name, size in names_and_sizes
                 if name == prefix or name.startswith(prefix + '/'))
  names = [name for name, _ in under]
  markers = []
  for index, (name, size) in enumerate(under):
    if size or not (name.endswith('/') or name == prefix):
      continue
    folder = name.rstrip('/') + '/'
    # Names are sorted, so anything below the folder comes right after its marker.
    if any(other != name and other.startswith(folder) for other in names[index + 1:index + 2]):
      markers.append(name)
  return markers


def remove_directory_markers(uris: Sequence[str], client=None) -> List[str]:
  """Deletes the folder markers under each gs:// URI that would break the KFP launcher.

  Args:
    uris: the task's output artifact URIs; those not on gs:// are skipped.
    client: a `google.cloud.storage.Client`; by default one with the pod's credentials.

  Returns:
    The deleted objects, as gs:// URIs.
  """
  remote = [uri for uri in uris if uri.startswith(GCS)]
  if not remote:
    return []
  if client is None:
    from google.cloud import storage  # pylint: disable=import-outside-toplevel
    client = storage.Client()
  deleted = []
  for uri in remote:
    bucket_name, prefix = split_gcs_uri(uri)
    bucket = client.bucket(bucket_name)
    blobs = {blob.name: blob for blob in client.list_blobs(bucket_name, prefix=prefix)}
    for name in directory_markers(((n, b.size or 0) for n, b in blobs.items()), prefix):
      bucket.blob(name).delete()
      deleted.append(f'{GCS}{bucket_name}/{name}')
  return deleted


def _output_uris(executor_input: Dict[str, Any]) -> List[str]:
  return [artifact['uri']
          for artifact_list in executor_input.get('outputs', {}).get('artifacts', {}).values()
          for artifact in artifact_list.get('artifacts', []) if artifact.get('uri')]


def main(parsed_argv) -> None:
  """Runs TFX's entry point on its parsed flags, after giving untyped inputs their types."""
  args, beam_args = parsed_argv
  executor_input = json.loads(args.json_serialized_invocation_args)
  if args.json_serialized_inputs_spec_args:
    filled = fill_input_types(executor_input, json.loads(args.json_serialized_inputs_spec_args))
    if filled:
      logging.info('Input artifacts %s came untyped; given their declared types', filled)
      args.json_serialized_invocation_args = json.dumps(executor_input)
  # A pod's Beam runs on the local FnApiRunner (unless --beam.extra_args names another runner),
  # which never reads the package TFX would build.
  with beam_staging.no_tfx_package_for_local_runners():
    kubeflow_v2_run_executor.main((args, beam_args))
  deleted = remove_directory_markers(_output_uris(executor_input))
  if deleted:
    logging.info('Deleted %d GCS folder markers under the outputs: %s', len(deleted), deleted)


if __name__ == '__main__':
  # pylint: disable-next=protected-access
  app.run(main, flags_parser=kubeflow_v2_run_executor._parse_flags)
