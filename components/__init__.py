"""The pipeline's TFX components and model code."""

import os

# TFX 1.16, TFMA 0.47 and TF-Hub's KerasLayer need Keras 2 (tf-keras), but TensorFlow 2.16 loads
# Keras 3 unless this is set before TensorFlow is first imported. TFX's own images set it too.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
