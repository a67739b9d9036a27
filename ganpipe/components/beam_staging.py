"""Keeps TFX from packaging itself for every Beam executor when the Beam runner is local.

TFX 1.16's `BaseBeamExecutor.__init__` (tfx/dsl/components/base/base_beam_executor.py) passes
non-empty Beam args through `dependency_utils.make_beam_dependency_flags`
(tfx/utils/dependency_utils.py). Unless a staging flag is already set, that calls
`build_ephemeral_package`: it copies the installed `tfx` package into a new `tempfile.mkdtemp()`
folder, runs `setup.py sdist` there and adds `--extra_package=<the sdist>` to the args. The
folder is never deleted. Here that is 52 MB and about 2.4 s for each Beam executor of each run:
a day of local runs fills `/tmp`.

Only runners that stage packages for remote workers read `--extra_package`: Dataflow and the
portable runners, through `apache_beam/runners/portability/stager.py`. The DirectRunner and its
FnApiRunner run their workers from this Python environment and never stage (no module under
apache_beam/runners/portability/fn_api_runner/ calls the Stager). For those runners the args are
left as they are; for any other runner TFX's own function runs unchanged.
"""

import contextlib
import threading
from typing import Iterator, List, Sequence

# Beam's local runners (StandardOptions.LOCAL_RUNNERS in apache_beam/options/pipeline_options.py)
# whose workers import from this environment. PrismRunner is left out: it is a portable runner.
IN_PROCESS_RUNNERS = frozenset({
    'DirectRunner', 'FnApiRunner', 'BundleBasedDirectRunner', 'SwitchingDirectRunner',
    'TestDirectRunner'})

_lock = threading.Lock()
_depth = 0
# TFX's function, kept after the last exit: a thread that looked up the replacement just before
# then still calls through it.
_original = None


def runner_of(beam_args: Sequence[str]) -> str:
  """The runner Beam will use for these args, as Beam parses them, without its module path."""
  from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
  standard = pipeline_options.PipelineOptions(flags=list(beam_args)).view_as(
      pipeline_options.StandardOptions)
  return (standard.runner or pipeline_options.StandardOptions.DEFAULT_RUNNER).split('.')[-1]


def needs_tfx_package(beam_args: Sequence[str]) -> bool:
  """Whether the runner of `beam_args` may run workers that need TFX shipped to them."""
  return runner_of(beam_args) not in IN_PROCESS_RUNNERS


def _dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
  if not needs_tfx_package(beam_pipeline_args):
    return beam_pipeline_args
  return _original(beam_pipeline_args)


@contextlib.contextmanager
def no_tfx_package_for_local_runners() -> Iterator[None]:
  """Within it, Beam executors built in this process skip TFX's package for local runners.

  Nests, and is safe to enter from several threads: TFX's function comes back at the last exit.
  """
  global _depth, _original  # pylint: disable=global-statement
  from tfx.utils import dependency_utils  # pylint: disable=import-outside-toplevel
  with _lock:
    if _depth == 0:
      if dependency_utils.make_beam_dependency_flags is not _dependency_flags:
        _original = dependency_utils.make_beam_dependency_flags
      dependency_utils.make_beam_dependency_flags = _dependency_flags
    _depth += 1
  try:
    yield
  finally:
    with _lock:
      _depth -= 1
      if _depth == 0:
        dependency_utils.make_beam_dependency_flags = _original


def installed() -> bool:
  """Whether the skip is in place now (for tests)."""
  from tfx.utils import dependency_utils  # pylint: disable=import-outside-toplevel
  return dependency_utils.make_beam_dependency_flags is _dependency_flags
