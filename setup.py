"""ganpipe: a TFX pipeline that trains a Keras GAN and an MLP classifier and serves them."""

import setuptools

setuptools.setup(
    name='ganpipe',
    version='0.1.0',
    description='TFX pipeline: Keras GAN + MLP classifier -> TF Serving and a TF Hub module',
    python_requires='>=3.11,<3.12',
    # One top-level import name, so that nothing collides with a user's own packages or with
    # Kubeflow's `kubeflow` namespace.
    packages=setuptools.find_packages(include=['ganpipe', 'ganpipe.*']),
    # Dependencies are pinned in requirements.lock and installed without resolution (the TFX 1.16
    # wheels declare Requires-Python <3.11 although they run on 3.11); see the Makefile.
    install_requires=[],
    entry_points={'console_scripts': ['ganpipe = ganpipe.app.cli:main']},
)
