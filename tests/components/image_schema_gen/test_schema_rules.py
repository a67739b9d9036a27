"""The schema curation applied after TFDV's inference."""

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from ganpipe.components.image_schema_gen import schema_rules

INFERRED = """
feature { name: "label" type: INT bool_domain {} }
feature { name: "label_name" type: BYTES domain: "label_name" }
feature { name: "source" type: BYTES domain: "source" }
feature { name: "channels" type: INT bool_domain {} }
feature { name: "height" type: INT }
string_domain { name: "label_name" value: "cat" value: "dog" }
string_domain { name: "source" value: "cat/1.png" value: "dog/2.png" }
"""


def _feature(schema, name):
  return next(f for f in schema.feature if f.name == name)


def test_curate_applies_the_image_layout_rules():
  schema = text_format.Parse(INFERRED, schema_pb2.Schema())
  curated = schema_rules.curate(schema, train_label_max=1)
  label = _feature(curated, 'label')
  assert label.WhichOneof('domain_info') == 'int_domain'
  assert (label.int_domain.min, label.int_domain.max) == (0, 1)
  assert _feature(curated, 'source').WhichOneof('domain_info') is None
  assert _feature(curated, 'channels').WhichOneof('domain_info') is None
  assert _feature(curated, 'label_name').domain == 'label_name'
  assert [d.name for d in curated.string_domain] == ['label_name']
  # The input is not modified.
  assert _feature(schema, 'source').domain == 'source'


def test_label_domain_is_left_alone_without_statistics():
  schema = text_format.Parse(INFERRED, schema_pb2.Schema())
  curated = schema_rules.curate(schema, train_label_max=None)
  assert _feature(curated, 'label').WhichOneof('domain_info') == 'bool_domain'


def test_label_max_reads_numeric_statistics():
  stats = statistics_pb2.DatasetFeatureStatisticsList()
  feature = stats.datasets.add().features.add()
  feature.path.step.append('label')
  feature.num_stats.max = 9
  assert schema_rules.label_max(stats) == 9
  assert schema_rules.label_max(statistics_pb2.DatasetFeatureStatisticsList()) is None


def test_drift_comparators_go_on_the_class_distribution_and_the_image_figures():
  schema = text_format.Parse(INFERRED + '''
      feature { name: "mean_intensity" type: FLOAT }
      feature { name: "original_height" type: INT }
      feature { name: "original_width" type: INT }''', schema_pb2.Schema())
  schema_rules.set_drift_comparators(schema, max_label_drift=0.15, max_feature_drift=0.3)
  assert _feature(schema, 'label_name').drift_comparator.infinity_norm.threshold == 0.15
  for name in ('mean_intensity', 'original_height', 'original_width'):
    comparator = _feature(schema, name).drift_comparator
    assert comparator.jensen_shannon_divergence.threshold == pytest.approx(0.3)
  for name in ('label', 'source', 'channels', 'height'):
    assert not _feature(schema, name).HasField('drift_comparator')
