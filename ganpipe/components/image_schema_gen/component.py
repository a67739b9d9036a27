"""ImageSchemaGen: SchemaGen for ImageExampleGen's examples, inferred from the train split."""

from tfx import types
from tfx.components.schema_gen import component as schema_gen_component
from tfx.dsl.components.base import executor_spec

from ganpipe.components.image_schema_gen import executor


class ImageSchemaGen(schema_gen_component.SchemaGen):
  """Infers the schema from the train split, so that eval data is validated against it.

  Unlike stock SchemaGen, identifiers get no value domain and `label` gets an integer domain
  (`schema_rules.py`).

  Outputs:
    schema: `schema.pbtxt`.
  """
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, statistics: types.BaseChannel):
    super().__init__(statistics=statistics, infer_feature_shape=True,
                     exclude_splits=['eval'])
