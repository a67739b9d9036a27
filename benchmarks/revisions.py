"""Another git revision's `ganpipe` package, for benchmarks that compare before with after."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_revision(revision: str, workdir: str, benchmark: str) -> str:
  """The `ganpipe` package of `revision`, unpacked under `workdir`; returns the folder above it.

  Exits with one line naming `benchmark` when git cannot archive the revision.
  """
  folder = os.path.join(workdir, f'ganpipe-{revision}')
  os.makedirs(folder)
  archive = subprocess.run(['git', 'archive', '--format=tar', revision, 'ganpipe'], cwd=REPO,
                           capture_output=True, check=False)
  if archive.returncode != 0:
    sys.exit(f'{benchmark}: error: git archive {revision}: '
             f'{archive.stderr.decode(errors="replace").strip()}')
  subprocess.run(['tar', '-x', '-C', folder], input=archive.stdout, check=True)
  return folder
