"""ganpipe: a TFX pipeline that trains a Keras GAN and an MLP classifier and serves them."""

import importlib
import os
import platform
import sys
import warnings

# TFX 1.16, TFMA 0.47 and TF-Hub's KerasLayer need Keras 2 (tf-keras), but TensorFlow 2.16 loads
# Keras 3 unless this is set before TensorFlow is first imported, as TFX's own images set it. The
# package root is the one place that runs before any ganpipe module, whatever the entry point
# (the CLI, a Beam worker, a Kubeflow task, a test or a notebook), so no module has to be
# imported for this effect, and no import order can undo it. An explicit user setting wins.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# TensorFlow's oneDNN CPU kernels, on x86-64 whatever the CPU. Without the variable, TensorFlow
# turns them on only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX (DefaultOneDnnPolicy,
# tensorflow/core/util/port.cc). On an AVX2 server CPU without those, they made the DCGAN's
# training step 1.5-1.9x as fast, the MLP's 1.2x, and no training case slower
# (benchmarks/onednn.py). The variable must be set before TensorFlow is imported: set after, the
# graphs keep TensorFlow's own kernels (Conv2D, not _MklNativeConv2D) though IsMklEnabled()
# answers True (tests/test_package_root.py), and a DCGAN step on an AVX2 EPYC took 0.52 s
# instead of 0.27 (benchmarks/gan_training_time.py, before it imported ganpipe first).
# An explicit setting wins; imported after TensorFlow, ganpipe says what it could not do.
if platform.machine().lower() in ('x86_64', 'amd64'):
  if 'tensorflow' in sys.modules and 'TF_ENABLE_ONEDNN_OPTS' not in os.environ:
    warnings.warn('TensorFlow was imported before ganpipe, so its oneDNN CPU kernels are as '
                  'it chose for this CPU: off unless the CPU has AVX-512 VNNI or BF16, AVX-VNNI '
                  'or AMX (ganpipe/__init__.py). Fix: import ganpipe before TensorFlow, TFX or '
                  'Beam, or set TF_ENABLE_ONEDNN_OPTS=1 (or 0) in the environment.',
                  RuntimeWarning, stacklevel=2)
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
