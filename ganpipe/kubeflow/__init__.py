"""Kubeflow Pipelines: compiling the pipeline to a KFP v2 package, its image and manifests."""
