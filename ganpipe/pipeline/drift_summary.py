"""The drift lines of the run summary: the new span's figures against its baseline, and the
verdict."""

import dataclasses
from typing import Dict, List, Optional


@dataclasses.dataclass
class DriftResult:
  """The new span's drift from the span of the latest blessed model, and what came of it."""
  span: int
  baseline_span: Optional[int]  # None: no blessed model yet, so nothing to compare with
  measurements: List[Dict]      # feature, kind, value, threshold
  drifted: List[str]            # the features above their thresholds
  allowed: bool = False         # --data.allow_drift: trained anyway
  stopped: bool = False         # the validation gate stopped the run
  baseline_failed: bool = False  # the baseline's resolver failed: no baseline, whatever blessed


def format_drift(drift: DriftResult) -> str:
  """One line of figures, and one of the verdict when a feature drifted."""
  if drift.baseline_failed:
    return f'drift: span {drift.span}: no baseline: its resolver FAILED, drift not measured'
  if drift.baseline_span is None:
    return f'drift: span {drift.span}: no baseline (no blessed model yet)'
  figures = ', '.join(f'{m["feature"]} {m["kind"]} {m["value"]:.3f} (max {m["threshold"]:g})'
                      for m in drift.measurements) or 'no drift comparators in the schema'
  line = f'drift: span {drift.span} vs span {drift.baseline_span}: {figures}'
  if drift.drifted:
    verdict = ('trained anyway (--data.allow_drift)' if drift.allowed else
               'training stopped' if drift.stopped else 'not trained')
    line += f'\n  DRIFTED: {", ".join(drift.drifted)}; {verdict}'
  return line
