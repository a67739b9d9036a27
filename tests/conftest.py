"""Shared test setup."""

import os

# Keep TensorFlow's C++ start-up chatter out of test output (must precede the first TF import).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import components  # noqa: E402,F401  (selects Keras 2 before TensorFlow is imported)

