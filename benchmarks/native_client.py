"""The native gRPC client (benchmarks/native_grpc_client.cc): built on demand, run as a process.

The Python clients of benchmarks/serving_load.py cost about 0.1 ms a call, and their GIL bounds
how fast 32 of them can call: both are in every Python-client figure, for every server alike.
The same measurements from a C++ client show what the servers themselves cost.
"""

import json
import os
import shutil
import struct
import subprocess
from typing import Dict, Optional, Sequence, Tuple

from benchmarks import serving_load

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'native_grpc_client.cc')
INSTALL_HINT = ('needs g++, pkg-config and gRPC C++ (Debian: apt-get install g++ pkg-config '
                'libgrpc++-dev)')


def build(workdir: str) -> Tuple[Optional[str], str]:
  """Compiles the client into `workdir`: (its path, '') or (None, why it cannot be built)."""
  if not (shutil.which('g++') and shutil.which('pkg-config')):
    return None, INSTALL_HINT
  flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'grpc++'], capture_output=True,
                         text=True, check=False)
  if flags.returncode:
    return None, INSTALL_HINT
  binary = os.path.join(workdir, 'native_grpc_client')
  compiled = subprocess.run(['g++', '-O2', '-std=c++17', SOURCE, '-o', binary] +
                            flags.stdout.split(), capture_output=True, text=True, check=False)
  if compiled.returncode:
    return None, f'g++ failed: {compiled.stderr.strip()[-2000:]}'
  return binary, ''


def write_requests(path: str, requests: Sequence[bytes]) -> str:
  """The client's request file: each serialized request behind its length (uint32, LE)."""
  with open(path, 'wb') as f:
    for request in requests:
      f.write(struct.pack('<I', len(request)) + request)
  return path


def latency(binary: str, target: str, requests_file: str, count: int,
            warmup: int) -> Dict[str, float]:
  """Sequential batch-1 calls on one channel, summarized as serving_load.grpc_latency does."""
  out = _run([binary, target, requests_file, 'latency', str(count), str(warmup)])
  return serving_load.summary([float(ms) / 1e3 for ms in out.split()])


def throughput(binary: str, target: str, requests_file: str, clients: int, warmup: float,
               seconds: float) -> Dict:
  """Requests/s of `clients` C++ threads, each with its own connection, calling back to back."""
  row = json.loads(_run([binary, target, requests_file, 'load', str(clients), str(seconds),
                         str(warmup)]))
  row['clients'] = clients
  return row


def _run(command) -> str:
  done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
  if done.returncode:
    raise RuntimeError(f'{os.path.basename(command[0])} failed ({done.returncode}): '
                       f'{done.stderr.strip()[-2000:]}')
  return done.stdout
