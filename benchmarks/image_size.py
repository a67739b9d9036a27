"""Benchmark: the pipeline image's size, CPU and GPU variants, estimated from the wheels' sizes.

Takes every pin of requirements.lock, and for the GPU variant its `# gpu:` lines too, and asks
PyPI's simple index (its JSON form) for the wheel that would be installed here: the best match
for this interpreter's tags, cp311 manylinux x86_64. It reports each wheel's download size and,
read from the wheel's zip directory over HTTP range requests (nothing is downloaded whole), the
bytes it unpacks to. The python:3.11.7-slim-bookworm base image is not counted: no registry for it is
reachable here.

  .venv/bin/python benchmarks/image_size.py [--out benchmarks/results]

Writes image_size.json and image_size.md. Needs PyPI.
"""

import argparse
from concurrent import futures
import io
import json
import os
import sys
import time
import urllib.request
import zipfile
from typing import Dict, List, Optional

from packaging import tags
from packaging import utils as packaging_utils

LOCK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    'requirements.lock')
GPU_PREFIX = '# gpu: '


class RemoteFile(io.RawIOBase):
  """A read-only, seekable file over HTTP range requests: enough for zipfile's directory."""

  def __init__(self, url: str, size: int):
    super().__init__()
    self._url, self._size, self._position = url, size, 0

  def seekable(self):
    return True

  def readable(self):
    return True

  def tell(self):
    return self._position

  def seek(self, offset, whence=io.SEEK_SET):
    base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
    self._position = base + offset
    return self._position

  def read(self, size=-1):
    end = self._size if size < 0 else min(self._size, self._position + size)
    if end <= self._position:
      return b''
    request = urllib.request.Request(
        self._url, headers={'Range': f'bytes={self._position}-{end - 1}'})
    with urllib.request.urlopen(request, timeout=60) as response:
      data = response.read()
    self._position += len(data)
    return data


def pins(text: str, gpu: bool) -> List[str]:
  prefix = GPU_PREFIX if gpu else ''
  found = []
  for line in text.splitlines():
    if gpu and line.startswith(GPU_PREFIX):
      found.append(line[len(prefix):].strip())
    elif not gpu and line.strip() and not line.startswith('#'):
      found.append(line.strip())
  return found


def best_wheel(files: List[dict], version: str) -> Optional[dict]:
  """The wheel of `version` an installer would choose here: the best-ranked matching tag."""
  rank = {tag: index for index, tag in enumerate(tags.sys_tags())}
  best = None
  for file in files:
    if not file['filename'].endswith('.whl'):
      continue
    try:
      _, wheel_version, _, wheel_tags = packaging_utils.parse_wheel_filename(file['filename'])
    except packaging_utils.InvalidWheelFilename:
      continue  # an old release's malformed name: never the one installed
    score = min((rank[t] for t in wheel_tags if t in rank), default=None)
    if str(wheel_version) == version and score is not None and (best is None or score < best[0]):
      best = (score, file)
  return best[1] if best else None


def measure(pin: str) -> Dict[str, object]:
  name, version = pin.split('==', 1)
  request = urllib.request.Request(
      f'https://pypi.org/simple/{packaging_utils.canonicalize_name(name)}/',
      headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
  with urllib.request.urlopen(request, timeout=60) as f:
    files = json.load(f)['files']
  wheel = best_wheel(files, version)
  if wheel is None:
    sdist = next((f for f in files if f['filename'].endswith(('.tar.gz', '.zip')) and
                  f'-{version}.' in f['filename']), None)
    return {'pin': pin, 'file': sdist and sdist['filename'],
            'download_bytes': sdist and sdist.get('size'), 'unpacked_bytes': None}
  with zipfile.ZipFile(RemoteFile(wheel['url'], wheel['size'])) as archive:
    unpacked = sum(info.file_size for info in archive.infolist())
  return {'pin': pin, 'file': wheel['filename'], 'download_bytes': wheel['size'],
          'unpacked_bytes': unpacked}


def measure_all(requirements: List[str]) -> List[Dict[str, object]]:
  with futures.ThreadPoolExecutor(8) as pool:
    return list(pool.map(measure, requirements))


def _total(rows, key) -> int:
  return sum(row[key] or 0 for row in rows)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  with open(LOCK, encoding='utf-8') as f:
    text = f.read()
  started = time.monotonic()
  cpu = measure_all(pins(text, gpu=False))
  gpu = measure_all(pins(text, gpu=True))
  result = {
      'benchmark': 'image_size',
      'seconds': round(time.monotonic() - started, 1),
      'cpu': {'packages': len(cpu), 'download_bytes': _total(cpu, 'download_bytes'),
              'unpacked_bytes': _total(cpu, 'unpacked_bytes'),
              'without_wheel': [row['pin'] for row in cpu if row['unpacked_bytes'] is None]},
      'gpu_extra': {'packages': len(gpu), 'download_bytes': _total(gpu, 'download_bytes'),
                    'unpacked_bytes': _total(gpu, 'unpacked_bytes'), 'wheels': gpu},
      'largest_cpu_wheels': sorted(cpu, key=lambda r: -(r['unpacked_bytes'] or 0))[:10],
  }
  result['gpu'] = {key: result['cpu'][key] + result['gpu_extra'][key]
                   for key in ('download_bytes', 'unpacked_bytes')}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'image_size.json'), 'w') as f:
    json.dump(result, f, indent=2)
  gb = 1e9
  with open(os.path.join(args.out, 'image_size.md'), 'w') as f:
    f.write('# The pipeline image\'s size, from the wheels it installs\n\n'
            'Without the python:3.11.7-slim-bookworm base. Unpacked is what the wheels hold; '
            'an installed venv adds bytecode and metadata.\n\n'
            '| variant | packages | download | unpacked |\n|---|---|---|---|\n')
    for label, packages, row in (
        ('CPU (requirements.lock)', len(cpu), result['cpu']),
        ('GPU = CPU + `# gpu:` lines', len(cpu) + len(gpu), result['gpu']),
        ('of which the CUDA wheels', len(gpu), result['gpu_extra'])):
      f.write(f'| {label} | {packages} | {row["download_bytes"] / gb:.2f} GB | '
              f'{row["unpacked_bytes"] / gb:.2f} GB |\n')
    f.write('\n| CUDA wheel | download | unpacked |\n|---|---|---|\n')
    for row in gpu:
      f.write(f'| {row["pin"]} | {row["download_bytes"] / 1e6:.0f} MB | '
              f'{row["unpacked_bytes"] / 1e6:.0f} MB |\n')
    if result['cpu']['without_wheel']:
      f.write(f'\nNo wheel for this machine (sdist size counted, unpacked not): '
              f'{", ".join(result["cpu"]["without_wheel"])}\n')
  print(json.dumps({key: result[key] for key in ('cpu', 'gpu', 'seconds')}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())
