"""The serving benchmark's goals, judged on the results of benchmarks/serving_latency.py."""

from typing import Dict, List, Optional

import numpy as np

# Goals from the issue.
MAX_P50_OVER_FLOOR_MS = 0.5
MAX_P99_MS = 5.0
MIN_BATCHED_SHARE_OF_NOOP = 0.70
# The suffix of a latency row's key when the native client measured it.
NATIVE = '_native_client'


def other_cpu(*rows: Dict) -> Optional[float]:
  """The most CPU that other work took during any of `rows`; None from the native client,
  which measures none."""
  values = [row['other_cpu_cores'] for row in rows if 'other_cpu_cores' in row]
  return max(values) if values else None


def ratio_table(ours: List[Dict], noop: List[Dict], minimal: List[Dict]) -> Dict:
  """Per round, ours and the minimal server against the no-op; and the median ratios."""

  def ratio(row: Dict, base: Dict) -> Optional[float]:
    if not base['requests_per_second']:
      return None
    return round(row['requests_per_second'] / base['requests_per_second'], 3)

  table = [{'batching_on_requests_per_second': a['requests_per_second'],
            'noop_requests_per_second': b['requests_per_second'],
            'minimal_requests_per_second': c['requests_per_second'],
            'ratio': ratio(a, b), 'minimal_ratio': ratio(c, b),
            'other_cpu_cores': other_cpu(a, b, c)}
           for a, b, c in zip(ours, noop, minimal)]

  def median(key: str) -> Optional[float]:
    values = [row[key] for row in table if row[key] is not None]
    return round(float(np.median(values)), 3) if values else None
  return {'rounds': table, 'median_ratio': median('ratio'),
          'minimal_median_ratio': median('minimal_ratio')}


def goals(results: Dict) -> Dict:
  latency = results['latency']
  # The faster of the two in-process calls is the floor: the stricter goal.
  floor_key = min(('in_process_floor', 'in_process_session_floor'),
                  key=lambda key: latency[key]['p50_ms'])
  ours, floor = latency['grpc_batching_off'], latency[floor_key]
  over_floor = round(ours['p50_ms'] - floor['p50_ms'], 3)
  batched = {row['clients']: row for row in results['throughput']['server_batching_on']}
  noop = {row['clients']: row for row in results['throughput']['noop_server']}
  top = max(batched)
  single_run = (round(batched[top]['requests_per_second'] / noop[top]['requests_per_second'], 3)
                if noop[top]['requests_per_second'] else None)
  # The median of the interleaved rounds: one run of each server, minutes apart, is at the mercy
  # of whatever else the machine did meanwhile.
  share = results['goal_rounds']['median_ratio']
  efficiency = (batched[top]['requests_per_server_cpu_second'],
                noop[top]['requests_per_server_cpu_second'])
  cpu_share = round(efficiency[0] / efficiency[1], 3) if all(efficiency) else None
  p50_goal = {'goal': f'gRPC p50 - floor p50 <= {MAX_P50_OVER_FLOOR_MS} ms',
              'value_ms': over_floor, 'met': over_floor <= MAX_P50_OVER_FLOOR_MS,
              'floor': floor_key,
              # Context: a server that ran exactly the floor's call would still be over the
              # floor by the protocol's own round trip, the no-op's p50.
              'noop_round_trip_ms': latency['grpc_noop_server']['p50_ms']}
  # Context, not the goal: the same from the native client, whose own cost is far smaller.
  if f'grpc_batching_off{NATIVE}' in latency:
    p50_goal['native_client_value_ms'] = round(
        latency[f'grpc_batching_off{NATIVE}']['p50_ms'] - floor['p50_ms'], 3)
    p50_goal['native_client_noop_round_trip_ms'] = latency[f'grpc_noop_server{NATIVE}']['p50_ms']
  native_rounds = results['goal_rounds'].get('native_client')
  return {
      'p50_over_floor': p50_goal,
      'p99': {'goal': f'gRPC p99 < {MAX_P99_MS} ms', 'value_ms': ours['p99_ms'],
              'met': ours['p99_ms'] < MAX_P99_MS},
      'batched_vs_noop': {
          'goal': f'batching on, {top} clients: >= {MIN_BATCHED_SHARE_OF_NOOP:.0%} of the no-op '
                  "server's requests/s",
          'value_ratio': share, 'met': share is not None and share >= MIN_BATCHED_SHARE_OF_NOOP,
          'rounds': len(results['goal_rounds']['rounds']), 'single_run_ratio': single_run,
          # Not the goal, context for it: the same ratio per server CPU-second, which other work
          # on the machine skews less.
          'per_server_cpu_second_ratio': cpu_share,
          # Context: the same median for benchmarks/serving_minimal.py, batching and nothing else.
          'minimal_batching_ratio': results['goal_rounds']['minimal_median_ratio'],
          # Context: the same rounds from the native client.
          'native_client_ratio': native_rounds['median_ratio'] if native_rounds else None,
          'native_client_minimal_ratio': (native_rounds['minimal_median_ratio'] if native_rounds
                                          else None)},
  }
