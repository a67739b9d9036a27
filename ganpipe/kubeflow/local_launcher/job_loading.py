"""Reads a compiled KFP package or PipelineJob, and maps its storage to local folders.

The tasks see the URIs a cluster would give them (`gs://...`, a volume's mount path); only on
the way into a task's process, and back out of what it reports, do they become local folders.
"""

import dataclasses
import json
import os
import re
from typing import Dict, List, Mapping, Optional

import yaml

from ganpipe.kubeflow.local_launcher import spec_utils
from ganpipe.pipeline import config as config_lib

SpecError = spec_utils.SpecError
# Object stores a KFP pipeline root can name (objectstore.ParseBucketConfig), and the local
# paths the KFP launcher gives their objects (LocalPathForURI, backend/src/v2/component/
# launcher_v2.go): a task can be handed either.
REMOTE_SCHEMES = ('gs://', 's3://', 'minio://')
LAUNCHER_PATHS = {'gs://': '/gcs/', 'minio://': '/minio/', 's3://': '/s3/'}


@dataclasses.dataclass
class Job:
  """A compiled pipeline: its spec, its Kubernetes platform spec, and a PipelineJob's runtime
  config (a KFP package has none: a run brings its own root and arguments)."""
  spec: dict
  platform: dict
  runtime_config: dict
  documents: List[dict]

  @property
  def is_package(self) -> bool:
    return not self.runtime_config


def load_job(path: str) -> Job:
  """Reads `ganpipe compile-kubeflow` output: the KFP package (YAML) or the PipelineJob (JSON)."""
  with open(path) as f:
    text = f.read()
  if path.endswith(('.yaml', '.yml')):
    documents = [d for d in yaml.safe_load_all(text) if d]
    if not documents:
      raise SpecError(f'{path} holds no YAML document')
    platform = {}
    for document in documents[1:]:
      platform.update(document.get('platforms', {}))
    return Job(documents[0], platform, {}, documents)
  job = json.loads(text)
  return Job(job['pipelineSpec'], {}, job.get('runtimeConfig', {}), [job])


class PathMap:
  """Local folders in place of remote prefixes and mount paths, into a task and back out."""

  def __init__(self, prefixes: Mapping[str, str]):
    """`prefixes`: remote prefix (`gs://bucket/ganpipe/pipeline`) or mount path -> local folder.

    Each gs://, s3:// and minio:// prefix also maps from the local path the KFP launcher gives
    it (`/gcs/bucket/...`). A prefix ends where a path segment does: /mnt/ganpipe is not the start
    of /mnt/ganpipe2.
    """
    self._local = {prefix.rstrip('/'): os.path.abspath(local).rstrip('/')
                   for prefix, local in prefixes.items()}
    for prefix in list(self._local):
      for scheme, launcher_path in LAUNCHER_PATHS.items():
        if prefix.startswith(scheme):
          self._local.setdefault(launcher_path + prefix[len(scheme):], self._local[prefix])
    self._remote = {os.path.abspath(local).rstrip('/'): prefix.rstrip('/')
                    for prefix, local in prefixes.items()}

  @staticmethod
  def _replace(text: str, mapping: Mapping[str, str]) -> str:
    # Longest first, so that a prefix nested in another is replaced by its own folder.
    for prefix in sorted(mapping, key=len, reverse=True):
      text = re.sub(re.escape(prefix) + r'(?![\w.-])', lambda _, to=mapping[prefix]: to, text)
    return text

  def to_local(self, text: str) -> str:
    """`text` with every mapped prefix replaced by its folder.

    Raises:
      SpecError: a remote URI is left that no prefix covers.
    """
    text = self._replace(text, self._local)
    left = re.findall(r'(?:%s)[^"\\\s]*' % '|'.join(map(re.escape, REMOTE_SCHEMES)), text)
    if left:
      raise SpecError(f'no local folder given for {sorted(set(left))}')
    return text

  def to_remote(self, text: str) -> str:
    """`text` with every local folder replaced by the prefix it stands for."""
    return self._replace(text, self._remote)


def local_roots(paths: config_lib.PathsConfig, local_dir: str) -> Dict[str, str]:
  """Remote root -> `<local_dir>/{pipeline,serving,hub}`, for the remote roots of a config.

  Roots on a mounted volume are not listed: `local_volumes` gives the volume a folder instead.
  """
  return {getattr(paths, name): os.path.join(local_dir, name.split('_')[0])
          for name in ('pipeline_root', 'serving_root', 'hub_root')
          if getattr(paths, name).startswith(REMOTE_SCHEMES)}


def local_volumes(kubeflow: config_lib.KubeflowConfig, local_dir: str) -> Dict[str, str]:
  """Volume claim -> `<local_dir>/volume`, when the config mounts one."""
  return {kubeflow.volume_claim: os.path.join(local_dir, 'volume')} if kubeflow.volume_claim \
      else {}


def volume_mounts(job: Job, volumes: Mapping[str, str]) -> Dict[str, str]:
  """Mount path -> local folder, from the package's Kubernetes platform spec (pvcMount only).

  Raises:
    SpecError: the platform spec asks for what this launcher cannot give: a claim without a
      folder, a container without the mount, or another Kubernetes feature.
  """
  unsupported = sorted(set(job.platform) - {'kubernetes'})
  if unsupported:
    raise SpecError(f'platform specs for {unsupported} are not supported')
  executors = job.platform.get('kubernetes', {}).get('deploymentSpec', {}).get('executors', {})
  mounts: Dict[str, str] = {}
  mounted_by: Dict[str, set] = {}
  for label, config in executors.items():
    others = sorted(set(config) - {'pvcMount'})
    if others:
      raise SpecError(f'executor {label}: Kubernetes settings {others} are not supported; only '
                      'pvcMount is')
    for mount in config['pvcMount']:
      claim, mount_path = mount.get('constant'), mount['mountPath'].rstrip('/')
      if not claim:
        raise SpecError(f'executor {label}: only volume claims named by a constant are '
                        f'supported, got {mount}')
      if claim not in volumes:
        raise SpecError(f'executor {label} mounts volume claim {claim!r}, and no local folder '
                        'was given for it')
      if mounts.setdefault(mount_path, volumes[claim]) != volumes[claim]:
        raise SpecError(f'{mount_path} mounts different claims in different executors')
      mounted_by.setdefault(mount_path, set()).add(label)
  # Locally every task shares one disk; in a cluster a pod without the mount writes to its own.
  containers = {label for label, executor in
                job.spec.get('deploymentSpec', {}).get('executors', {}).items()
                if 'container' in executor}
  for mount_path, labels in mounted_by.items():
    if containers - labels:
      raise SpecError(f'{mount_path} is not mounted in {sorted(containers - labels)}, whose '
                      'pods would not see what the others write there')
  return mounts


def path_map(job: Job, roots: Mapping[str, str],
             volumes: Optional[Mapping[str, str]] = None) -> PathMap:
  """The local folders of a job's roots and of the volumes its platform spec mounts."""
  return PathMap({**roots, **volume_mounts(job, volumes or {})})
