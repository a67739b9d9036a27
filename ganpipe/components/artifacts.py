"""ganpipe's custom artifact types, and the custom properties components write on artifacts.

Each TYPE_NAME is also the artifact's KFP schema title, `ganpipe.<Class>`, by which TFX's
Kubeflow entry point imports it again (see `ganpipe/__init__.py`).
"""

from tfx.types import artifact

# Why a blessing, push or publication said no. The pushers and the publisher repeat the reason of
# each blessing that stopped them in their own.
REASON_PROPERTY = 'reason'
# 1 on a PushedModel or HubModule that was not pushed or published because the newest version
# there already holds the same model (versioning.latest_if_unchanged); `reason` names it.
UNCHANGED_PROPERTY = 'unchanged'


class ClassMap(artifact.Artifact):
  """Class ids and names of a dataset.

  Layout: `{uri}/class_map.json`, holding `{"classes": [{"id": 0, "name": "..."}, ...]}` with
  ids 0..n-1 in order (`ganpipe.components.class_map` reads and writes it).
  """
  TYPE_NAME = 'ganpipe.ClassMap'


class IngestionReport(artifact.Artifact):
  """What ImageExampleGen read and rejected.

  Layout: `{uri}/ingestion_report.json` (counts by split and reason, warnings, the class
  folders left out as empty, the files skipped as not named as images, the first 10,000
  rejected records) and `{uri}/rejected-*.jsonl` (every rejected record, one JSON object per
  line: source, reason, detail). When ingestion fails, TFX deletes `{uri}`; both are kept in
  `{uri}.failed/`.
  """
  TYPE_NAME = 'ganpipe.IngestionReport'


class GeneratorEvaluation(artifact.Artifact):
  """Layout: `{uri}/metrics.json` (distances, scores, verdict) and `{uri}/samples.png`."""
  TYPE_NAME = 'ganpipe.GeneratorEvaluation'


class HubModule(artifact.Artifact):
  """Where the generator was published, in custom properties; nothing under `{uri}/`.

  `published` (1 or 0), and when 1 `published_path` (the module folder), `version` and
  `archive_path` (when an archive was made); when 0, `reason`.
  """
  TYPE_NAME = 'ganpipe.HubModule'


class DriftReport(artifact.Artifact):
  """How far a new span's statistics drifted from the span of the latest blessed model.

  Layout: `{uri}/drift.json`, and the same figures in the custom property `drift` (JSON), read
  by the run summary without loading TensorFlow: the span, the baseline span (none on the first
  run), and per feature the distance, its kind and its threshold (`drift_validator/drift.py`).
  """
  TYPE_NAME = 'ganpipe.DriftReport'
