"""benchmarks/gan_throughput.py fails loudly, naming the case and its ratio, below its goal."""

import importlib.util
import pathlib
import sys

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks' / 'gan_throughput.py'


@pytest.fixture
def benchmark(monkeypatch, tmp_path):
  """The benchmark module with its two timings replaced by fixed images/s per case."""
  spec = importlib.util.spec_from_file_location('gan_throughput', _PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  speeds = {}
  monkeypatch.setattr(module, 'ours', lambda a, shape, *_: (speeds[shape][0], 0.0))
  monkeypatch.setattr(module, 'hand_written', lambda a, shape, *_: speeds[shape][1])

  def run(figures, *args):
    speeds.update({module.CASES[name][1]: pair for name, pair in figures.items()})
    monkeypatch.setattr(sys, 'argv', ['gan_throughput.py', '--repeats', '2', '--out',
                                      str(tmp_path), '--cases', ','.join(figures), *args])
    return module.main()
  return run


def test_a_case_below_the_goal_exits_non_zero_with_one_line(benchmark, capsys):
  assert benchmark({'dense-8x8x1': (95.0, 100.0), 'dcgan-32x32x3': (156.0, 260.0)}) == 1
  assert capsys.readouterr().err.strip().splitlines() == [
      'gan_throughput: FAIL dcgan-32x32x3: ours / hand-written = 0.600 < 0.9 '
      '(156.0 vs 260.0 images/s)']


def test_every_case_at_the_goal_exits_zero(benchmark, capsys):
  assert benchmark({'dense-8x8x1': (90.0, 100.0), 'dcgan-28x28x1': (120.0, 100.0)}) == 0
  assert 'FAIL' not in capsys.readouterr().err


def test_an_unknown_case_is_refused_in_one_line(benchmark, capsys):
  with pytest.raises(SystemExit, match='2'):
    benchmark({}, '--cases', 'dcgan-64x64x3')
  assert 'unknown case(s) dcgan-64x64x3; choose from dense-8x8x1' in capsys.readouterr().err
