"""The real-image sample: stratified over classes, seeded, from the whole split, order-free."""

import os

import numpy as np
import pytest

from ganpipe.components.generator_evaluator import sampling
from ganpipe.components.image_example_gen import images
from tests import image_data


def _write_split(root, records, shards=1):
  """Writes (pixels, label, source) records to `root/Split-eval/` over `shards` files."""
  os.makedirs(root / 'Split-eval', exist_ok=True)
  for shard in range(shards):
    image_data.write_tfrecord(
        str(root / 'Split-eval' / f'data-{shard:05d}-of-{shards:05d}.gz'),
        [images.make_example(p[..., np.newaxis], label, str(label), source)
         for p, label, source in records[shard::shards]])
  return sampling.split_files(str(root), 'eval')


def _class_by_class(per_class=50):
  """Digits 0-9, `per_class` of each, written as a folder source writes them: class by class."""
  records = []
  for digit in range(10):
    for index, (pixels, label) in enumerate(image_data.digit_images(per_class, classes=[digit])):
      records.append((pixels, label, f'digit_{label}/{index:04d}.png'))
  return records


@pytest.mark.parametrize('counts, total, expected', [
    ({0: 50, 1: 50}, 10, {0: 5, 1: 5}),
    ({0: 300, 1: 100}, 100, {0: 75, 1: 25}),
    # 4 * (1/3, 1/3, 1/3) = 1.33 each; the one image left goes to the lowest class id.
    ({0: 3, 1: 3, 2: 3}, 4, {0: 2, 1: 1, 2: 1}),
    # 7 * (5, 3, 2)/10 = 3.5, 2.1, 1.4: the largest fraction (0.5) gets the image left.
    ({0: 5, 1: 3, 2: 2}, 7, {0: 4, 1: 2, 2: 1}),
    ({0: 5, 1: 3}, 8, {0: 5, 1: 3}),
])
def test_quotas_are_proportional_to_the_classes(counts, total, expected):
  assert sampling.quotas(counts, total) == expected


def test_a_sample_larger_than_the_split_is_refused():
  with pytest.raises(ValueError, match='a sample of 9 images asked of 8'):
    sampling.quotas({0: 5, 1: 3}, 9)


def test_a_split_written_class_by_class_gives_every_class_its_share(tmp_path):
  files = _write_split(tmp_path, _class_by_class())
  counts = sampling.class_counts(files)
  assert counts == {digit: 50 for digit in range(10)}
  pixels, labels = sampling.sample(files, sampling.quotas(counts, 100), seed=1)
  assert pixels.shape == (100, 8, 8, 1) and pixels.dtype == np.float32 and pixels.max() <= 1.0
  # The first 100 records would be digits 0 and 1 only.
  assert np.bincount(labels).tolist() == [10] * 10
  # Classes come interleaved, not in blocks: the first 20 already hold several.
  assert len(set(labels[:20].tolist())) >= 5


def test_the_sample_does_not_depend_on_how_the_records_were_sharded(tmp_path):
  records = _class_by_class(20)
  one = _write_split(tmp_path / 'one', records)
  three = _write_split(tmp_path / 'three', records[::-1], shards=3)
  shares = sampling.quotas(sampling.class_counts(one), 30)
  pixels_one, labels_one = sampling.sample(one, shares, seed=5)
  pixels_three, labels_three = sampling.sample(three, shares, seed=5)
  np.testing.assert_array_equal(pixels_one, pixels_three)
  np.testing.assert_array_equal(labels_one, labels_three)


def test_the_seed_decides_which_images_and_the_whole_split_is_drawn_from(tmp_path):
  files = _write_split(tmp_path, _class_by_class(30))
  shares = sampling.quotas(sampling.class_counts(files), 50)
  first, _ = sampling.sample(files, shares, seed=0)
  again, _ = sampling.sample(files, shares, seed=0)
  other, _ = sampling.sample(files, shares, seed=1)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(np.sort(first.reshape(50, -1), axis=0),
                            np.sort(other.reshape(50, -1), axis=0))
  # Digit 9's images are the last 30 records; its 5 come from all of them, not the first 5.
  nines = [p for p, label, _ in _class_by_class(30) if label == 9]
  chosen = {tuple(np.round(p.ravel() * 255).astype(int)) for p, _ in zip(*sampling.sample(
      files, {9: 5}, seed=0))}
  positions = [i for i, p in enumerate(nines) if tuple(p.ravel().astype(int)) in chosen]
  assert len(positions) == 5 and max(positions) >= 5


def test_an_empty_split_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='no examples in .*Split-train'):
    sampling.split_files(str(tmp_path), 'train')
