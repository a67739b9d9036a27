"""What is known about the image schema beyond what TFDV infers from statistics."""

from typing import Optional

from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from ganpipe.models import features

# Identifiers: every value is new, so a value domain learned from training data is wrong.
IDENTIFIER_FEATURES = (features.SOURCE_KEY,)
# Sizes are set by the configured image shape; TFDV reads a constant 1 as a boolean.
SIZE_FEATURES = (features.HEIGHT_KEY, features.WIDTH_KEY, features.CHANNELS_KEY)


def label_max(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> Optional[int]:
  """The largest label in the statistics, or None without label statistics."""
  for dataset in statistics.datasets:
    for feature in dataset.features:
      if list(feature.path.step) == [features.LABEL_KEY] and feature.HasField('num_stats'):
        return int(feature.num_stats.max)
  return None


# Drift from the span that trained the latest blessed model is measured on these, with TFDV's
# comparators: the L-infinity distance of the class distribution (by name: TFDV computes it on
# categorical statistics only), and the Jensen-Shannon divergence of the numeric ones.
LABEL_DRIFT_FEATURES = (features.LABEL_NAME_KEY,)
NUMERIC_DRIFT_FEATURES = (features.ORIGINAL_HEIGHT_KEY, features.ORIGINAL_WIDTH_KEY,
                          features.MEAN_INTENSITY_KEY)


def set_drift_comparators(schema: schema_pb2.Schema, max_label_drift: float,
                          max_feature_drift: float) -> None:
  """Puts drift comparators with these thresholds on the drift features the schema has."""
  for feature in schema.feature:
    if feature.name in LABEL_DRIFT_FEATURES:
      feature.drift_comparator.infinity_norm.threshold = max_label_drift
    elif feature.name in NUMERIC_DRIFT_FEATURES:
      feature.drift_comparator.jensen_shannon_divergence.threshold = max_feature_drift


def curate(schema: schema_pb2.Schema, train_label_max: Optional[int]) -> schema_pb2.Schema:
  """Returns a copy of an inferred schema with the image layout's domain knowledge applied.

  - identifier features (`source`) have no value domain;
  - sizes (`height`, `width`, `channels`) have no boolean domain;
  - `label` is an integer class id in [0, largest label seen in training]. TFDV would infer a
    boolean domain for a two-class label, whose anomaly message misleads.
  """
  curated = schema_pb2.Schema()
  curated.CopyFrom(schema)
  for feature in curated.feature:
    if feature.name in IDENTIFIER_FEATURES:
      feature.ClearField('domain_info')
      feature.ClearField('distribution_constraints')
    elif feature.name in SIZE_FEATURES and feature.HasField('bool_domain'):
      feature.ClearField('bool_domain')
    elif feature.name == features.LABEL_KEY and train_label_max is not None:
      feature.ClearField('domain_info')
      feature.int_domain.min = 0
      feature.int_domain.max = train_label_max
  # A string domain of `source` may also have been declared at the top level.
  used = {f.domain for f in curated.feature if f.HasField('domain')}
  kept = [d for d in curated.string_domain if d.name in used]
  del curated.string_domain[:]
  curated.string_domain.extend(kept)
  return curated
