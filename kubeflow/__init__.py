"""Kubeflow Pipelines: compiling the pipeline to a KFP v2 spec, its image and serving manifests."""
