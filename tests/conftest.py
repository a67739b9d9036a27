"""Shared test setup."""

import os

# Keep TensorFlow's C++ start-up chatter out of test output (must precede the first TF import).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import components  # noqa: E402,F401  (selects Keras 2 before TensorFlow is imported)


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
