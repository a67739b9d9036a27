"""`ganpipe rollout status | label | promote | rollback MODEL`: a canary's way to stable.

Each step is one atomic rewrite of `<serving_root>/models.config`, which the server applies when
it next polls the file (`--model_config_file_poll_wait_seconds`). The server is asked only what
the file cannot say: which versions are AVAILABLE (a label on any other is refused, see
components/serving_pusher/rollout.py) and, for `promote --auto`, each version's live figures.
"""

import argparse
import json
import time
from typing import Dict, List, Optional

from ganpipe.app import client_common
from ganpipe.app import rollout_checks
from ganpipe.pipeline import config as config_lib

EXIT_FAILED = client_common.EXIT_FAILED
# The state rollout --auto ends in when the checks fail: not a failure of the command.
EXIT_ROLLED_BACK = 3


def add_parser(commands) -> None:
  """Adds `rollout` and its subcommands to the `ganpipe` subparsers."""
  rollout = commands.add_parser(
      'rollout', help='canary rollouts: status, label, promote, rollback',
      description='Drive a canary pushed with --publish.rollout canary: `label` puts the canary '
                  'and stable labels on once the server has both versions AVAILABLE, `promote` '
                  'moves stable onto the canary (with --auto, only when its live figures pass), '
                  '`rollback` removes it. Each step is one atomic rewrite of models.config, '
                  'for a server that polls it (--model_config_file_poll_wait_seconds).')
  steps = rollout.add_subparsers(dest='step', metavar='STEP', required=True)
  for name, text in (('status', "show the model's versions, labels and live figures"),
                     ('label', 'label stable and the canary once they are AVAILABLE'),
                     ('promote', 'make the canary stable; retire the old version'),
                     ('rollback', 'remove the canary; stable stays')):
    step = steps.add_parser(name, help=text, description=text[0].upper() + text[1:] + '.')
    step.add_argument('model', metavar='MODEL', help='e.g. classifier')
    step.add_argument('--serving-root', default=config_lib.PathsConfig().serving_root,
                      metavar='DIR', help='where models.config is (default: %(default)s)')
    if name != 'rollback':
      client_common.add_connection_flags(step)
      step.add_argument('--metrics-url', metavar='URL',
                        help="the server's Prometheus metrics (default: port 8501 of the "
                             f'--target host, {rollout_checks.DEFAULT_METRICS_PATH})')
    step.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS,
                      help='show full tracebacks')
    step.set_defaults(handler=_run)
  steps.choices['status'].add_argument('--json', action='store_true',
                                       help='print machine-readable JSON')
  steps.choices['label'].add_argument(
      '--wait', type=client_common.positive_float, default=60.0, metavar='SECONDS',
      help='how long to wait for the versions to be AVAILABLE (default: %(default)s)')
  promote = steps.choices['promote']
  promote.add_argument('--wait', type=client_common.positive_float, default=60.0,
                       metavar='SECONDS', help='how long to wait for the server to unload the '
                       'old version before retention deletes it (default: %(default)s)')
  promote.add_argument('--keep-versions', type=client_common.positive_int,
                       default=config_lib.PublishConfig().keep_versions, metavar='N',
                       help='retention: versions kept on disk (default: %(default)s)')
  promote.add_argument('--auto', action='store_true',
                       help='promote only if the live checks pass; else roll back, say why and '
                            f'exit {EXIT_ROLLED_BACK}')
  defaults = rollout_checks.Thresholds()
  promote.add_argument('--min-requests', type=client_common.positive_int,
                       default=defaults.min_requests, metavar='N',
                       help='--auto: requests the canary must have served (default: %(default)s)')
  promote.add_argument('--error-rate-margin', type=_fraction, default=defaults.error_rate_margin,
                       metavar='F', help="--auto: the canary's error rate may exceed stable's by "
                                         'this fraction (default: %(default)s)')
  promote.add_argument('--latency-factor', type=_factor, default=defaults.latency_factor,
                       metavar='X', help="--auto: the canary's p99 latency may be this many "
                                         "times stable's (default: %(default)s)")


def _run(args: argparse.Namespace) -> int:
  # pylint: disable=import-outside-toplevel
  from ganpipe.components.serving_pusher import rollout
  try:
    current = _current(args)
    if args.step == 'rollback':
      return _rollback(args)
    return _with_server(args, current)
  except (rollout.RolloutError, rollout_checks.MetricsError,
          client_common.CommandError) as error:
    client_common.print_error(str(error))
    return EXIT_FAILED


def _current(args):
  # pylint: disable-next=import-outside-toplevel
  from ganpipe.components.serving_pusher import rollout_steps
  return rollout_steps.current(args.serving_root, args.model)


@client_common.reports_errors
def _with_server(args: argparse.Namespace, client_lib, current) -> int:
  # pylint: disable=import-outside-toplevel
  from ganpipe.components.serving_pusher import rollout_steps
  with client_common.connect(args, client_lib) as client:
    if args.step == 'label':
      available = _wait_available(client, args.model, [current.stable, current.canary],
                                  args.wait)
      result = rollout_steps.label(args.serving_root, args.model, available)
      for label, version in sorted(result.labelled.items()):
        print(f'{args.model}: {label} -> version {version}')
      missing = [v for v in (current.stable, current.canary) if v is not None and
                 v not in available]
      if missing:
        raise client_common.CommandError(
            f'version(s) {", ".join(map(str, missing))} of {args.model} not AVAILABLE after '
            f'{args.wait:g} s; left unlabelled. Check `ganpipe models {args.model}`')
      if not result.labelled:
        print(f'{args.model}: labels already in place')
      return 0
    available = _available(client, args.model)
    if args.step == 'status':
      return _status(args, current, available)
    if args.auto:
      figures = _figures(args)
      thresholds = rollout_checks.Thresholds(args.min_requests, args.error_rate_margin,
                                             args.latency_factor)
      if current.canary is None:
        raise client_common.CommandError(f'model {args.model!r} has no canary to promote')
      canary, stable = (figures.get(current.canary, rollout_checks.Figures()),
                        figures.get(current.stable, rollout_checks.Figures()))
      print(f'canary {current.canary}: {canary.describe()}')
      print(f'stable {current.stable}: {stable.describe()}')
      reasons = rollout_checks.judge(canary, stable, thresholds)
      if reasons:
        _rollback(args)
        print(f'{args.model}: rolled back: ' + '; '.join(reasons))
        return EXIT_ROLLED_BACK
    ready = [version for version, state in available.items() if state == 'AVAILABLE']
    result = rollout_steps.promote(args.serving_root, args.model, ready)
    print(f'{args.model}: promoted version {result.before.canary} to stable (was '
          f'{result.before.stable})')
    # Its folder goes only once the server has unloaded it: until it reads the new config, the
    # server still answers `stable` from it.
    if _wait_state(client, args.model, result.before.stable, args.wait, available=False):
      deleted = rollout_steps.retain(args.serving_root, args.model, args.keep_versions)
      print(f'{args.model}: retention kept the {args.keep_versions} newest versions' +
            (f'; deleted {", ".join(map(str, deleted))}' if deleted else ''))
    else:
      print(f'{args.model}: version {result.before.stable} still serves after {args.wait:g} s; '
            'its folder stays until the next push applies the retention rule')
  return 0


def _rollback(args: argparse.Namespace) -> int:
  # pylint: disable-next=import-outside-toplevel
  from ganpipe.components.serving_pusher import rollout_steps
  result = rollout_steps.rollback(args.serving_root, args.model)
  print(f'{args.model}: rolled back canary version {result.before.canary}; stable stays on '
        f'version {result.before.stable}; deleted version {result.before.canary}')
  return 0


def _status(args: argparse.Namespace, current, available: Dict[int, str]) -> int:
  metrics_url = args.metrics_url or rollout_checks.default_metrics_url(args.target)
  try:
    figures, note = _figures(args), None
  except rollout_checks.MetricsError as error:
    figures, note = {}, str(error)
  rows = []
  for version, role in ((current.stable, 'stable'), (current.canary, 'canary')):
    if version is None:
      continue
    labels = sorted(label for label, v in current.labels.items() if v == version)
    rows.append({'version': version, 'role': role, 'labels': labels,
                 'state': available.get(version, 'UNKNOWN'),
                 'figures': _figures_dict(figures.get(version))})
  pending = current.canary is not None and not current.canary_labelled
  if args.json:
    print(json.dumps({'model': args.model, 'versions': rows, 'canary_label_pending': pending,
                      'metrics_url': metrics_url, 'metrics_error': note}, indent=2))
    return 0
  print(f'{args.model} ({args.serving_root}/models.config)')
  for row in rows:
    figures_text = (rollout_checks.Figures(**row['figures']).describe()
                    if row['figures'] else 'no requests yet' if not note else 'no figures')
    print(f"  version {row['version']}  {row['role']:<6}  labels: "
          f"{','.join(row['labels']) or '-':<13}  {row['state']:<9}  {figures_text}")
  if current.canary is None:
    print('  no canary')
  if pending:
    print(f'  the canary label is pending: run `ganpipe rollout label {args.model}`')
  if note:
    print(f'  no live figures: {note}')
  return 0


def _figures_dict(figures: Optional[rollout_checks.Figures]) -> Optional[dict]:
  if figures is None:
    return None
  return {'requests': figures.requests, 'errors': figures.errors, 'p99_ms': figures.p99_ms}


def _figures(args: argparse.Namespace) -> Dict[int, rollout_checks.Figures]:
  url = args.metrics_url or rollout_checks.default_metrics_url(args.target)
  return rollout_checks.version_figures(rollout_checks.fetch(url, args.timeout), args.model)


def _available(client, model: str) -> Dict[int, str]:
  return {status['version']: status['state'] for status in client.model_status(model)}


def _wait_state(client, model: str, version: int, wait: float, available: bool) -> bool:
  """Whether `version` is (or, with available=False, is not) AVAILABLE within `wait` seconds."""
  deadline = time.monotonic() + wait
  while (_available(client, model).get(version) == 'AVAILABLE') != available:
    if time.monotonic() >= deadline:
      return False
    time.sleep(0.5)
  return True


def _wait_available(client, model: str, versions: List[Optional[int]],
                    wait: float) -> List[int]:
  wanted = {v for v in versions if v is not None}
  deadline = time.monotonic() + wait
  while True:
    states = _available(client, model)
    available = [v for v in wanted if states.get(v) == 'AVAILABLE']
    if len(available) == len(wanted) or time.monotonic() >= deadline:
      return available
    time.sleep(0.5)


def _fraction(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a fraction such as 0.01, got {text!r}') from None
  if not 0 <= value <= 1:
    raise argparse.ArgumentTypeError(f'must be between 0 and 1, got {text}')
  return value


def _factor(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a number such as 1.5, got {text!r}') from None
  if not 1 <= value < float('inf'):
    raise argparse.ArgumentTypeError(f'must be at least 1, got {text}')
  return value
