"""The pipeline definition, its configuration, runners and command-line tool."""

import components  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
