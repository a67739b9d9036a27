"""ImageSchemaGen's executor: TFX's SchemaGen inference, then `schema_rules.curate`."""

import os

from tfx.components.schema_gen import executor as schema_gen_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tensorflow_metadata.proto.v0 import schema_pb2

from ganpipe.components.image_schema_gen import schema_rules

TRAIN_SPLIT = 'train'
MAX_LABEL_DRIFT_KEY = 'max_label_drift'
MAX_FEATURE_DRIFT_KEY = 'max_feature_drift'


class Executor(schema_gen_executor.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    super().Do(input_dict, output_dict, exec_properties)
    path = os.path.join(
        artifact_utils.get_single_uri(output_dict[standard_component_specs.SCHEMA_KEY]),
        schema_gen_executor.DEFAULT_FILE_NAME)
    schema = io_utils.parse_pbtxt_file(path, schema_pb2.Schema())
    stats_artifact = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.STATISTICS_KEY])
    statistics = stats_artifact_utils.load_statistics(stats_artifact, TRAIN_SPLIT).proto()
    curated = schema_rules.curate(schema, schema_rules.label_max(statistics))
    schema_rules.set_drift_comparators(curated, float(exec_properties[MAX_LABEL_DRIFT_KEY]),
                                       float(exec_properties[MAX_FEATURE_DRIFT_KEY]))
    io_utils.write_pbtxt_file(path, curated)
