"""The pipeline's node ids and model names, without TFX, for the commands that only read a run.

`create_pipeline` builds its components with these ids; `status`, `lineage` and the demo read
them here, so that they do not import TFX (half a minute on a laptop) to learn names.
"""

# The model names under the serving root.
CLASSIFIER = 'classifier'
GENERATOR = 'generator'
INGESTION_NODE = 'image_example_gen'

# Every node of the locally run pipeline, in the order of `create_pipeline(config).components`
# (tests/pipeline/test_nodes.py checks that the two agree).
NODE_IDS = (
    'drift_baseline_resolver', INGESTION_NODE, 'statistics_gen', 'schema_gen', 'drift_validator',
    'example_validator', 'transform', 'example_validation_gate', 'classifier_trainer',
    'classifier_infra_validator',
    'latest_blessed_classifier_resolver', 'classifier_evaluator', 'classifier_pusher',
    'gan_trainer', 'generator_infra_validator', 'latest_blessed_generator_resolver',
    'generator_evaluator', 'generator_pusher', 'hub_publisher',
)

# The nodes whose figures the run summary reports for drift.
DRIFT_NODE = 'drift_validator'
DRIFT_BASELINE_NODE = 'drift_baseline_resolver'
GATE_NODE = 'example_validation_gate'
TRANSFORM_NODE = 'transform'

# What the run summary reports for each model: its evaluator (TFMA's or the generator's),
# pusher and headline metric.
EVALUATED_MODELS = {
    CLASSIFIER: {'evaluator': 'classifier_evaluator', 'pusher': 'classifier_pusher',
                 'infra_validator': 'classifier_infra_validator',
                 'metric': 'sparse_categorical_accuracy', 'kind': 'tfma'},
    GENERATOR: {'evaluator': 'generator_evaluator', 'pusher': 'generator_pusher',
                'infra_validator': 'generator_infra_validator', 'publisher': 'hub_publisher',
                'metric': 'frechet_classifier_distance', 'kind': 'generator'},
}
