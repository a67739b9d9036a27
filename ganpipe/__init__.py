"""ganpipe: a TFX pipeline that trains a Keras GAN and an MLP classifier and serves them."""

import importlib
import os
import platform

# TFX 1.16, TFMA 0.47 and TF-Hub's KerasLayer need Keras 2 (tf-keras), but TensorFlow 2.16 loads
# Keras 3 unless this is set before TensorFlow is first imported, as TFX's own images set it. The
# package root is the one place that runs before any ganpipe module, whatever the entry point
# (the CLI, a Beam worker, a Kubeflow task, a test or a notebook), so no module has to be
# imported for this effect, and no import order can undo it. An explicit user setting wins.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# TensorFlow's oneDNN CPU kernels, on x86-64 whatever the CPU. TensorFlow reads the variable once,
# at first use, and without it turns them on only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or
# AMX (DefaultOneDnnPolicy, tensorflow/core/util/port.cc). On an AVX2 server CPU without those,
# they made the DCGAN's training step 1.5-1.9x as fast, the MLP's 1.2x, and no training case
# slower (benchmarks/onednn.py). Set here for the same reason as above; an explicit setting wins.
if platform.machine().lower() in ('x86_64', 'amd64'):
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

# TFX's Kubeflow V2 entry point imports a custom artifact type by its TYPE_NAME, which the KFP
# schema title limits to `<namespace>.<Class>`: `ganpipe.ClassMap` must resolve here. They load
# on first use, so that `import ganpipe.serving` does not load TFX.
_ARTIFACT_TYPES = ('ClassMap', 'DriftReport', 'GeneratorEvaluation', 'HubModule',
                   'IngestionReport')


def __getattr__(name: str):
  if name in _ARTIFACT_TYPES:
    return getattr(importlib.import_module('ganpipe.components.artifacts'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
