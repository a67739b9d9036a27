"""ganpipe's custom artifact types, importable by the names their KFP schema titles give."""

# TFX's Kubeflow V2 entry point imports a custom artifact type by its TYPE_NAME, and the KFP
# schema title allows only `<module>.<Class>`: `ganpipe.ClassMap` must resolve here.
from components.class_map import ClassMap  # noqa: F401
from components.generator_evaluator.component import GeneratorEvaluation  # noqa: F401
from components.hub_publisher.component import HubModule  # noqa: F401
from components.image_example_gen.report import IngestionReport  # noqa: F401
