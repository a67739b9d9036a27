"""Where a benchmark's figures go: `<out>/<name>.json` for machines, `<name>.md` for people."""

import json
import os
from typing import Any, Dict


def write(out_dir: str, name: str, results: Dict[str, Any], report: str) -> None:
  """Writes `results` as JSON and `report` as markdown under `out_dir`, and prints the report."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(out_dir, f'{name}.md'), 'w') as f:
    f.write(report)
  print(report)
