"""Reads a compiled PipelineJob or KFP package, with local folders in place of its storage."""

import json
import os
import re
from typing import Dict, Mapping, Optional, Sequence

import yaml

from ganpipe.kubeflow import compile as kubeflow_compile
from ganpipe.kubeflow.local_launcher import spec_utils
from ganpipe.pipeline import config as config_lib

SpecError = spec_utils.SpecError


def local_roots(paths: config_lib.PathsConfig, local_dir: str) -> Dict[str, str]:
  """Remote root -> `<local_dir>/{pipeline,serving,hub}`, for the remote roots of a config.

  Roots on a mounted volume are not listed: `local_volumes` gives the volume a folder instead.
  """
  return {getattr(paths, name): os.path.join(local_dir, name.split('_')[0])
          for name in ('pipeline_root', 'serving_root', 'hub_root')
          if getattr(paths, name).startswith(kubeflow_compile.REMOTE_SCHEMES)}


def local_volumes(kubeflow: config_lib.KubeflowConfig, local_dir: str) -> Dict[str, str]:
  """Volume claim -> `<local_dir>/volume`, when the config mounts one."""
  return {kubeflow.volume_claim: os.path.join(local_dir, 'volume')} if kubeflow.volume_claim \
      else {}


def load_job(path: str, roots: Mapping[str, str],
             volumes: Optional[Mapping[str, str]] = None) -> dict:
  """Reads a PipelineJob JSON, or a KFP package, with each remote root replaced by a local folder.

  Args:
    path: `ganpipe compile-kubeflow` output: the PipelineJob JSON, or the KFP package (IR YAML),
      which becomes a PipelineJob with its default pipeline root, as Kubeflow Pipelines runs it.
    roots: remote prefix (e.g. `gs://bucket/ganpipe/serving`) -> local folder.
    volumes: volume claim -> the local folder that plays it. A package's Kubernetes platform
      spec may mount claims (pvcMount) in its containers; each mount path is then replaced by
      the claim's folder, as if every task ran in a pod with the volume mounted.

  Raises:
    SpecError: if a remote URI is left that no root covers, or the platform spec asks for what
      this launcher cannot give: a claim without a folder, a container without the mount, or
      another Kubernetes feature.
  """
  with open(path) as f:
    text = f.read()
  documents = list(yaml.safe_load_all(text)) if path.endswith(('.yaml', '.yml')) else []
  mounts = _volume_mounts(documents[0], documents[1:], volumes or {}) if documents else {}
  # Longest first, so that a root nested in another is replaced by its own folder.
  replacements = {**{remote.rstrip('/'): local for remote, local in roots.items()}, **mounts}
  # A prefix ends where a path segment does: /mnt/ganpipe is not the start of /mnt/ganpipe2.
  for prefix in sorted(replacements, key=len, reverse=True):
    local = os.path.abspath(replacements[prefix]).rstrip('/')
    text = re.sub(re.escape(prefix) + r'(?![\w.-])', lambda _, local=local: local, text)
  left = re.findall(r'(?:%s)[^"\\\s]*' % '|'.join(map(re.escape, kubeflow_compile.REMOTE_SCHEMES)),
                    text)
  if left:
    raise SpecError(f'no local root given for {sorted(set(left))}')
  if not documents:
    return json.loads(text)
  spec = next(yaml.safe_load_all(text))
  if not spec.get('defaultPipelineRoot'):
    raise SpecError(f'{path} has no defaultPipelineRoot; pass a pipeline root')
  return {'displayName': spec['pipelineInfo']['name'], 'pipelineSpec': spec,
          'runtimeConfig': {'gcsOutputDirectory': spec['defaultPipelineRoot']}}


def _volume_mounts(spec: dict, platform_documents: Sequence[dict],
                   volumes: Mapping[str, str]) -> Dict[str, str]:
  """Mount path -> local folder, from a package's Kubernetes platform spec (pvcMount only)."""
  platforms = {}
  for document in platform_documents:
    platforms.update((document or {}).get('platforms', {}))
  unsupported = sorted(set(platforms) - {'kubernetes'})
  if unsupported:
    raise SpecError(f'platform specs for {unsupported} are not supported')
  executors = platforms.get('kubernetes', {}).get('deploymentSpec', {}).get('executors', {})
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
  containers = {label for label, executor in spec['deploymentSpec']['executors'].items()
                if 'container' in executor}
  for mount_path, labels in mounted_by.items():
    if containers - labels:
      raise SpecError(f'{mount_path} is not mounted in {sorted(containers - labels)}, whose '
                      'pods would not see what the others write there')
  return mounts
