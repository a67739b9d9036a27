"""ImageExampleGen's executor and driver on small sources, with outputs laid out as in a run."""

import glob
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import class_map
from components.image_example_gen import component
from components.image_example_gen import driver
from components.image_example_gen import executor
from tests import image_data


def run_executor(tmp_path, **component_args):
  """Runs the executor as the launcher would; returns {split: [tf.Example]} and class names."""
  gen = component.ImageExampleGen(**component_args)
  exec_properties = {key: proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR')
                     else value for key, value in gen.exec_properties.items()}
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  classes = class_map.ClassMap()
  classes.uri = str(tmp_path / 'class_map')
  executor.Executor().Do({}, {'examples': [examples], 'class_map': [classes]}, exec_properties)
  splits = {}
  for split in ('train', 'eval'):
    files = glob.glob(os.path.join(examples.uri, f'Split-{split}', '*.gz'))
    splits[split] = [tf.train.Example.FromString(r.numpy()) for r in
                     tf.data.TFRecordDataset(files, compression_type='GZIP')]
  assert examples.split_names == '["train", "eval"]'
  return splits, class_map.read(classes.uri)


def _values(example, key):
  feature = example.features.feature[key]
  return feature.int64_list.value or feature.bytes_list.value


def test_digits_are_split_by_the_hash_of_their_index(tmp_path):
  splits, names = run_executor(tmp_path, source='digits', image_shape=(8, 8, 1))
  assert names == [str(d) for d in range(10)]
  assert len(splits['train']) + len(splits['eval']) == 1797
  assert 0.15 < len(splits['eval']) / 1797 < 0.25  # 4:1 buckets
  example = splits['train'][0]
  assert _values(example, 'source')[0].startswith(b'digits:')
  assert list(_values(example, 'height')) == [8]
  assert _values(example, 'label_name')[0].decode() == str(_values(example, 'label')[0])


def test_digits_split_is_deterministic(tmp_path):
  first, _ = run_executor(tmp_path / 'a', source='digits', image_shape=(8, 8, 1))
  second, _ = run_executor(tmp_path / 'b', source='digits', image_shape=(8, 8, 1))
  for split in ('train', 'eval'):
    assert (sorted(_values(e, 'source')[0] for e in first[split]) ==
            sorted(_values(e, 'source')[0] for e in second[split]))


def test_folder_tree_with_nested_folders_and_resizing(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data), {'digit_3': 6, 'digit_7': 4}, size=12)
  image_data.write_class_folders(str(data / 'digit_3' / 'more'), {'digit_3': 2})
  splits, names = run_executor(tmp_path, source='folder', input_base=str(data),
                               image_shape=(10, 10, 3), train_buckets=1, eval_buckets=1)
  everything = splits['train'] + splits['eval']
  assert names == ['digit_3', 'digit_7']
  assert len(everything) == 12
  sources = sorted(_values(e, 'source')[0].decode() for e in everything)
  assert 'digit_3/more/digit_3/0000.png' in sources and 'digit_7/0003.png' in sources
  labels = {_values(e, 'source')[0].decode().split('/')[0]: _values(e, 'label')[0]
            for e in everything}
  assert labels == {'digit_3': 0, 'digit_7': 1}
  decoded = tf.io.decode_png(_values(everything[0], 'image')[0])
  assert decoded.shape == (10, 10, 3)


def test_folder_given_splits_are_kept(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data / 'train'), {'digit_1': 5, 'digit_2': 5})
  image_data.write_class_folders(str(data / 'test'), {'digit_1': 2, 'digit_2': 3}, offset=900)
  splits, names = run_executor(tmp_path, source='folder', input_base=str(data),
                               image_shape=(8, 8, 1))
  assert names == ['digit_1', 'digit_2']
  assert len(splits['train']) == 10 and len(splits['eval']) == 5
  assert all(_values(e, 'source')[0].startswith(b'test/') for e in splits['eval'])


def test_corrupt_file_fails_with_its_path(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data), {'digit_1': 3})
  (data / 'digit_1' / 'broken.png').write_bytes(b'not a png at all')
  with pytest.raises(Exception, match=r'not_an_image: digit_1/broken.png'):
    run_executor(tmp_path, source='folder', input_base=str(data), image_shape=(8, 8, 1))


def test_missing_folder_is_reported(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    run_executor(tmp_path, source='folder', input_base=str(tmp_path / 'nope'),
                 image_shape=(8, 8, 1))


def test_unknown_source_is_rejected():
  with pytest.raises(ValueError, match="unknown image source 'mnist'"):
    component.ImageExampleGen(source='mnist', image_shape=(8, 8, 1))


def test_fingerprint_sees_changes_in_nested_folders(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data / 'a' / 'deep'), {'digit_1': 2})
  before = driver.source_fingerprint('folder', str(data))
  assert before == driver.source_fingerprint('folder', str(data))
  image_data.write_class_folders(str(data / 'a' / 'deep'), {'digit_2': 1})
  assert driver.source_fingerprint('folder', str(data)) != before
  assert driver.source_fingerprint('digits', '').startswith('builtin:')
