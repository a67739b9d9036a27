"""The pipeline image's Dockerfile: hadolint-clean, and a GPU variant with TensorFlow's own CUDA."""

import importlib.metadata
import os
import re
import subprocess
import sys

DOCKERFILE = os.path.join(os.path.dirname(__file__), '..', '..', 'ganpipe', 'kubeflow',
                          'Dockerfile')
LOCK = os.path.join(os.path.dirname(__file__), '..', '..', 'requirements.lock')


def _read(path):
  with open(path, encoding='utf-8') as f:
    return f.read()


def test_the_dockerfile_is_hadolint_clean():
  hadolint = os.path.join(os.path.dirname(sys.executable), 'hadolint')
  result = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True, timeout=60,
                          check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def _gpu_pins_the_gpu_variant_installs():
  """Runs the Dockerfile's own extraction of the GPU pins on the lock."""
  dockerfile = _read(DOCKERFILE)
  command = re.search(r"gpu\) (sed -n '[^']+' requirements\.lock)", dockerfile).group(1)
  result = subprocess.run(command.replace('requirements.lock', LOCK), shell=True,
                          capture_output=True, text=True, timeout=30, check=True)
  return sorted(result.stdout.split())


def test_the_gpu_variant_installs_exactly_tensorflows_cuda_extra():
  cuda_extra = sorted(
      re.sub(r'\s', '', requirement.split(';')[0])
      for requirement in importlib.metadata.requires('tensorflow')
      if re.search(r"""extra\s*==\s*['"]and-cuda['"]""", requirement))
  assert len(cuda_extra) == 12
  assert _gpu_pins_the_gpu_variant_installs() == cuda_extra


def test_the_cpu_variant_installs_no_cuda_library():
  pins = [line for line in _read(LOCK).splitlines() if line and not line.startswith('#')]
  assert pins and not [line for line in pins if line.startswith('nvidia-')]
  # The lock the CPU image installs is the one tensorflow's CPU build runs from here.
  assert 'tensorflow==2.16.2' in pins
