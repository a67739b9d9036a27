"""The stratified split: each class cut in the buckets' ratio, by a stable hash of its keys."""

import pytest

from ganpipe.components.image_example_gen import split
from tests.components.image_example_gen import executor_harness as harness
from tests import image_data


def _counts(keys, buckets):
  class_cuts = split.cuts(keys, buckets)
  counts = [0] * len(buckets)
  for key in keys:
    counts[split.assign(key, class_cuts)] += 1
  return counts


@pytest.mark.parametrize('size, buckets, expected', [
    (50, (4, 1), [40, 10]),
    (7, (4, 1), [6, 1]),       # 5.6 rounds to 6
    (3, (4, 1), [2, 1]),       # 2.4 rounds to 2
    (2, (4, 1), [2, 0]),       # 1.6 rounds to 2: a class of two keeps both for training
    (1, (1, 1), [1, 0]),       # 0.5 rounds half up
    (10, (1, 1, 2), [3, 2, 5]),
])
def test_each_class_is_cut_in_the_ratio_of_the_buckets(size, buckets, expected):
  keys = [split.split_key(f'c/{i}.png'.encode()) for i in range(size)]
  assert _counts(keys, buckets) == expected


def test_which_keys_go_where_does_not_depend_on_their_order():
  keys = [split.split_key(f'c/{i}.png'.encode()) for i in range(30)]
  assert split.cuts(keys, (4, 1)) == split.cuts(keys[::-1], (4, 1))


def test_a_folder_written_class_by_class_is_split_in_proportion_in_every_class(tmp_path):
  data = tmp_path / 'data'
  # Small classes of uneven sizes: a hash split leaves some far from 4:1 (or out of eval).
  per_class = {'digit_0': 10, 'digit_1': 15, 'digit_2': 5, 'digit_3': 20, 'digit_4': 7}
  image_data.write_class_folders(str(data), per_class)
  result = harness.run(tmp_path / 'out', source='folder', input_base=str(data),
                       image_shape=(8, 8, 1))
  for name, size in per_class.items():
    in_eval = sum(s.startswith(name + '/') for s in harness.sources(result.splits['eval']))
    in_train = sum(s.startswith(name + '/') for s in harness.sources(result.splits['train']))
    assert (in_train, in_eval) == (size - (2 * size + 5) // 10, (2 * size + 5) // 10), name
