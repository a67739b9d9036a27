"""Shared test setup."""

import os

# Keep TensorFlow's C++ start-up chatter out of test output (must precede the first TF import).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Test modules may import TensorFlow before any ganpipe module: the package root, which selects
# Keras 2 for every ganpipe process (ganpipe/__init__.py), must come first here too.
import ganpipe  # noqa: E402,F401


import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_root_logging():
  """`ganpipe`'s main() points the root logger at the stderr of its test, which pytest closes
  after it; later tests' log records would then fail to print. Each test gets the root logger
  back as it found it."""
  root = logging.getLogger()
  handlers, level = root.handlers[:], root.level
  yield
  root.handlers[:] = handlers
  root.setLevel(level)


def pytest_collection_modifyitems(items):
  """Test files holding end-to-end tests run first, in their usual order.

  They are the long ones (pipeline runs of minutes). Under `make test`'s parallel workers, each
  takes whole files as it frees up, so starting with the long files leaves the short ones to
  even out the end, instead of one worker still running a pipeline while the other idles.
  """
  slow_files = {item.path for item in items if item.get_closest_marker('e2e')}
  items.sort(key=lambda item: item.path not in slow_files)  # A stable sort: order within kept.
