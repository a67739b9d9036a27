"""ImageExampleGen's executor and driver: splits, class maps, bad records and the report."""

import glob
import io
import json
import os
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tfx.orchestration.portable import outputs_utils

from ganpipe.components import artifacts
from ganpipe.components.image_example_gen import component
from ganpipe.components.image_example_gen import driver
from ganpipe.components.image_example_gen import report
from tests import image_data
from tests.components.image_example_gen import executor_harness as harness
from tests.components.image_example_gen.executor_harness import value


def test_digits_are_split_class_by_class_by_the_hash_of_their_index(tmp_path):
  result = harness.run(tmp_path, source='digits', image_shape=(8, 8, 1))
  assert result.class_names == [str(d) for d in range(10)]
  train, evaluation = result.splits['train'], result.splits['eval']
  assert len(train) + len(evaluation) == 1797
  # 4:1 buckets: each class gives a fifth of its images (rounded) to eval, as no hash split does.
  sizes = np.bincount([value(e, 'label') for e in train + evaluation])
  in_eval = np.bincount([value(e, 'label') for e in evaluation], minlength=10)
  assert in_eval.tolist() == [(2 * size + 5) // 10 for size in sizes]
  example = train[0]
  assert value(example, 'source').startswith(b'digits:')
  assert value(example, 'height') == 8
  assert value(example, 'label_name').decode() == str(value(example, 'label'))
  assert result.report['accepted_by_split'] == {'train': len(train), 'eval': len(evaluation)}
  assert result.report['rejected'] == 0 and result.report['rejected_records'] == []


def test_split_is_the_same_across_runs_and_worker_counts(tmp_path):
  one = harness.run(tmp_path / 'one', source='digits', image_shape=(8, 8, 1),
                    beam_args=['--direct_running_mode=in_memory', '--direct_num_workers=1'])
  two = harness.run(tmp_path / 'two', source='digits', image_shape=(8, 8, 1),
                    beam_args=['--direct_running_mode=multi_processing',
                               '--direct_num_workers=2'])
  again = harness.run(tmp_path / 'again', source='digits', image_shape=(8, 8, 1))
  for split in ('train', 'eval'):
    assert harness.sources(one.splits[split]) == harness.sources(two.splits[split])
    assert harness.sources(one.splits[split]) == harness.sources(again.splits[split])


def test_folder_tree_with_nested_folders_and_resizing(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data), {'digit_3': 6, 'digit_7': 4}, size=12)
  image_data.write_class_folders(str(data / 'digit_3' / 'more'), {'digit_3': 2})
  result = harness.run(tmp_path, source='folder', input_base=str(data),
                       image_shape=(10, 10, 3), train_buckets=1, eval_buckets=1)
  everything = result.splits['train'] + result.splits['eval']
  assert result.class_names == ['digit_3', 'digit_7']
  assert len(everything) == 12
  sources = harness.sources(everything)
  assert 'digit_3/more/digit_3/0000.png' in sources and 'digit_7/0003.png' in sources
  labels = {value(e, 'source').decode().split('/')[0]: value(e, 'label') for e in everything}
  assert labels == {'digit_3': 0, 'digit_7': 1}
  assert tf.io.decode_png(value(everything[0], 'image')).shape == (10, 10, 3)
  # Data validation sees the size each image had before it was resized.
  assert {(value(e, 'original_height'), value(e, 'original_width')) for e in everything} == {
      (12, 12), (8, 8)}


def test_folder_given_splits_are_kept(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data / 'train'), {'digit_1': 5, 'digit_2': 5})
  image_data.write_class_folders(str(data / 'test'), {'digit_1': 2, 'digit_2': 3}, offset=900)
  result = harness.run(tmp_path, source='folder', input_base=str(data), image_shape=(8, 8, 1))
  assert result.class_names == ['digit_1', 'digit_2']
  assert len(result.splits['train']) == 10 and len(result.splits['eval']) == 5
  assert all(s.startswith('test/') for s in harness.sources(result.splits['eval']))


def _png(size=(8, 8), mode='L', fmt='PNG', value_=100):
  buffer = io.BytesIO()
  pixels = np.full(size[::-1], value_, dtype=np.uint16 if mode == 'I;16' else np.uint8)
  Image.fromarray(pixels).save(buffer, fmt)
  return buffer.getvalue()


@pytest.fixture
def messy_folder(tmp_path):
  """20 good images, one of each bad kind, an empty class folder, files not named as images,
  and an image outside any class folder."""
  data = tmp_path / 'messy'
  image_data.write_class_folders(str(data), {'digit_1': 10, 'digit_2': 10})
  bad = data / 'digit_1'
  (bad / 'empty.png').write_bytes(b'')
  (bad / 'truncated.png').write_bytes(_png(size=(64, 64))[:60])
  (bad / 'notes.txt').write_text('not an image')
  (bad / 'deep.png').write_bytes(_png(mode='I;16', value_=40000))
  (bad / 'big.png').write_bytes(_png(size=(16, 16)))
  (bad / 'scan.tiff').write_bytes(_png(fmt='TIFF'))
  (bad / 'bomb.png').write_bytes(image_data.png_header_only(100_000, 100_000))
  (data / 'digit_9').mkdir()
  (data / 'digit_8').mkdir()
  (data / 'digit_8' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')  # no image: an empty class
  (data / 'digit_2' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (data / 'README.md').write_text('about this data')
  (data / 'stray.png').write_bytes(_png())
  return data


def test_every_bad_record_is_counted_by_reason_and_listed(tmp_path, messy_folder):
  result = harness.run(tmp_path, source='folder', input_base=str(messy_folder),
                       image_shape=(8, 8, 1), on_wrong_size='reject', max_bad_fraction=0.5)
  got = result.report
  assert got['rejected_by_reason'] == {'zero_byte': 1, 'corrupt': 1, 'unsupported_mode': 1,
                                       'wrong_size': 1, 'format_not_accepted': 1, 'too_large': 1}
  assert got['accepted'] == 20 and got['rejected'] == 6 and got['total_records'] == 26
  assert got['rejected_fraction'] == pytest.approx(6 / 26)
  listed = {r['source']: r['reason'] for r in got['rejected_records']}
  assert listed == {'digit_1/empty.png': 'zero_byte', 'digit_1/truncated.png': 'corrupt',
                    'digit_1/deep.png': 'unsupported_mode', 'digit_1/big.png': 'wrong_size',
                    'digit_1/scan.tiff': 'format_not_accepted', 'digit_1/bomb.png': 'too_large'}
  assert got['rejected_records_complete']
  lines = []
  for name in os.listdir(result.report_uri):
    if name.startswith('rejected-'):
      with open(os.path.join(result.report_uri, name)) as f:
        lines.extend(json.loads(line) for line in f)
  assert len(lines) == 6


def test_files_not_named_as_images_are_skipped_and_counted_apart(tmp_path, messy_folder):
  got = harness.run(tmp_path, source='folder', input_base=str(messy_folder),
                    image_shape=(8, 8, 1), max_bad_fraction=0.5).report
  # As Keras' image_dataset_from_directory: by extension, never read, never a bad record.
  assert 'not_an_image' not in got['rejected_by_reason']
  assert got['skipped_files'] == 4
  assert got['skipped_by_extension'] == {'(no extension)': 2, '.md': 1, '.txt': 1}
  assert got['skipped_files_listed'] == ['README.md', 'digit_1/notes.txt', 'digit_2/.DS_Store',
                                         'digit_8/.DS_Store']
  assert got['total_records'] == 26  # they are no records


def test_an_empty_class_folder_is_left_out_of_the_class_map_and_named(tmp_path, messy_folder):
  result = harness.run(tmp_path, source='folder', input_base=str(messy_folder),
                       image_shape=(8, 8, 1), max_bad_fraction=0.5)
  # digit_8 holds only a .DS_Store, digit_9 nothing: neither becomes an output never trained.
  assert result.class_names == ['digit_1', 'digit_2']
  assert result.report['classes'] == ['digit_1', 'digit_2']
  assert result.report['empty_classes'] == ['digit_8', 'digit_9']
  labels = {value(e, 'label_name').decode(): value(e, 'label')
            for e in result.splits['train'] + result.splits['eval']}
  assert labels == {'digit_1': 0, 'digit_2': 1}
  warnings = {(w['source'], w['reason']) for w in result.report['warnings']}
  assert warnings == {('digit_8', 'empty_class_folder'), ('digit_9', 'empty_class_folder'),
                      ('stray.png', 'not_in_class_folder')}


def test_a_folder_whose_class_folders_hold_no_image_is_refused(tmp_path):
  for name in ('cats', 'dogs'):
    os.makedirs(tmp_path / 'data' / name)
    (tmp_path / 'data' / name / 'notes.txt').write_text('to do')
  with pytest.raises(FileNotFoundError, match=r"holds no image files: none of its class folders "
                                              r"\(cats, dogs\) has a file named \*\.bmp"):
    harness.run(tmp_path, source='folder', input_base=str(tmp_path / 'data'),
                image_shape=(8, 8, 1))


def test_above_the_limit_the_component_fails_naming_the_worst_reasons(tmp_path, messy_folder):
  with pytest.raises(report.IngestionError,
                     match=r'rejected 6 of 26 records \(23\.1%\), above the limit of 1\.0%\. '
                           r'Worst reasons: corrupt 1, format_not_accepted 1, too_large 1'):
    harness.run(tmp_path, source='folder', input_base=str(messy_folder), image_shape=(8, 8, 1),
                on_wrong_size='reject')


def test_the_report_a_failure_names_outlives_the_failed_execution(tmp_path, messy_folder):
  with pytest.raises(report.IngestionError, match=r'Every rejected record is listed in (\S+)\. ') \
      as failure:
    harness.run(tmp_path, source='folder', input_base=str(messy_folder), image_shape=(8, 8, 1),
                on_wrong_size='reject')
  # What TFX's launcher does to the outputs of an execution that failed (launcher.py).
  report_artifact = artifacts.IngestionReport()
  report_artifact.uri = str(tmp_path / 'ingestion_report')
  outputs_utils.remove_output_dirs({'ingestion_report': [report_artifact]})
  assert not os.path.exists(report_artifact.uri)
  named = re.search(r'listed in (\S+)\. ', str(failure.value)).group(1)
  assert named == str(tmp_path / 'ingestion_report.failed' / 'ingestion_report.json')
  with open(named) as f:
    kept = json.load(f)
  assert kept['rejected'] == 6 and len(kept['rejected_records']) == 6
  assert glob.glob(str(tmp_path / 'ingestion_report.failed' / 'rejected-*.jsonl'))


def test_resize_policy_accepts_the_big_image(tmp_path, messy_folder):
  result = harness.run(tmp_path, source='folder', input_base=str(messy_folder),
                       image_shape=(8, 8, 1), max_bad_fraction=0.5)
  assert 'wrong_size' not in result.report['rejected_by_reason']
  assert result.report['accepted'] == 21


def test_nothing_usable_fails(tmp_path):
  data = tmp_path / 'data' / 'only'
  data.mkdir(parents=True)
  (data / 'a.png').write_bytes(b'')
  with pytest.raises(report.IngestionError, match='no usable images among 1 records'):
    harness.run(tmp_path, source='folder', input_base=str(tmp_path / 'data'),
                image_shape=(8, 8, 1), max_bad_fraction=1.0)


def test_missing_folder_is_reported(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    harness.run(tmp_path, source='folder', input_base=str(tmp_path / 'nope'),
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


def test_links_fifos_and_huge_files_in_a_folder_are_handled_and_reported(tmp_path):
  data = tmp_path / 'data'
  image_data.write_class_folders(str(data), {'digit_1': 5, 'digit_2': 5})
  elsewhere = tmp_path / 'elsewhere'
  image_data.write_class_folders(str(elsewhere), {'digit_3': 4})
  os.symlink(elsewhere / 'digit_3', data / 'digit_3')          # a class folder kept elsewhere
  os.symlink('..', data / 'digit_1' / 'up')                    # a loop through the root
  os.symlink(data / 'digit_2', data / 'digit_2' / 'again')     # a loop to itself
  os.symlink('/nonexistent/gone.png', data / 'digit_1' / 'gone.png')
  os.mkfifo(data / 'digit_2' / 'pipe.png')                     # reading it would block forever
  with open(data / 'digit_2' / 'video.png', 'wb') as f:
    f.truncate(17 * 2**20)  # sparse: over 4 x 64 pixels + 16 MiB, the most an 8x8 image takes
  result = harness.run(tmp_path / 'out', source='folder', input_base=str(data),
                       image_shape=(8, 8, 1), max_image_pixels=64, max_bad_fraction=0.5)
  got = result.report
  assert result.class_names == ['digit_1', 'digit_2', 'digit_3']
  assert got['accepted'] == 14  # each image once: 5 + 5, and 4 through the linked class
  listed = {r['source']: (r['reason'], r['detail']) for r in got['rejected_records']}
  assert listed['digit_1/gone.png'][0] == 'unreadable'
  assert listed['digit_2/pipe.png'] == ('unreadable', 'a FIFO, not a regular file')
  assert listed['digit_2/video.png'][0] == 'too_large'
  assert len(listed) == 3
  warnings = {(w['source'], w['reason']) for w in got['warnings']}
  assert warnings == {('digit_1/up', 'repeated_folder'), ('digit_2/again', 'repeated_folder')}
  # The driver's fingerprint walks the same tree: no loop, and the dangling link is no error.
  assert driver.source_fingerprint('folder', str(data)).startswith('files:17:')
