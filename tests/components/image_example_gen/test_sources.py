"""Each source format through ImageExampleGen's executor, on small generated data."""

import gzip
import io
import os
import struct
import zipfile

import numpy as np
import pytest

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import report
from ganpipe.components.image_example_gen import sources
from ganpipe.components.image_example_gen.sources import builtin
from ganpipe.components.image_example_gen.sources import idx
from ganpipe.components.image_example_gen.sources import npz
from tests import image_data
from tests.components.image_example_gen import executor_harness as harness
from tests.components.image_example_gen.executor_harness import value


# ---------------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize('gz', [False, True])
def test_idx_pairs_keep_train_and_t10k_splits(tmp_path, gz):
  data = tmp_path / 'idx'
  data.mkdir()
  train_images, train_labels = image_data.digits_arrays(30)
  test_images, test_labels = image_data.digits_arrays(12, offset=1000)
  image_data.write_idx(str(data / 'train-images-idx3-ubyte'), train_images, gz)
  image_data.write_idx(str(data / 'train-labels-idx1-ubyte'), train_labels, gz)
  image_data.write_idx(str(data / 't10k-images-idx3-ubyte'), test_images, gz)
  image_data.write_idx(str(data / 't10k-labels-idx1-ubyte'), test_labels, gz)
  result = harness.run(tmp_path, source='idx', input_base=str(data), image_shape=(8, 8, 1))
  assert len(result.splits['train']) == 30 and len(result.splits['eval']) == 12
  values = sorted(set(train_labels) | set(test_labels))
  assert result.class_names == [str(v) for v in values]
  name = 'train-images-idx3-ubyte' + ('.gz' if gz else '')
  by_source = {value(e, 'source').decode(): e for e in result.splits['train']}
  first = by_source[f'{name}:0']
  assert value(first, 'label') == values.index(train_labels[0])
  decoded = np.frombuffer(images.normalize_image(value(first, 'image'), images.ImagePolicy(
      (8, 8, 1))).tobytes(), np.uint8).reshape(8, 8)
  np.testing.assert_array_equal(decoded, train_images[0])


def test_idx_count_mismatch_rejects_the_unmatched_records(tmp_path):
  data = tmp_path / 'idx'
  data.mkdir()
  pixels, labels = image_data.digits_arrays(40)
  image_data.write_idx(str(data / 'train-images-idx3-ubyte'), pixels)
  image_data.write_idx(str(data / 'train-labels-idx1-ubyte'), labels[:37])
  result = harness.run(tmp_path, source='idx', input_base=str(data), image_shape=(8, 8, 1),
                       max_bad_fraction=0.1)
  assert result.report['rejected_by_reason'] == {'count_mismatch': 3}
  assert result.report['accepted'] == 37
  assert sorted(r['source'] for r in result.report['rejected_records']) == [
      'train-images-idx3-ubyte:37', 'train-images-idx3-ubyte:38', 'train-images-idx3-ubyte:39']
  assert all('40 images but 37 labels' in r['detail'] for r in result.report['rejected_records'])


def _idx_pair(tmp_path, count=40, gz=False):
  data = tmp_path / 'idx'
  data.mkdir()
  pixels, labels = image_data.digits_arrays(count)
  return (image_data.write_idx(str(data / 'train-images-idx3-ubyte'), pixels, gz),
          image_data.write_idx(str(data / 'train-labels-idx1-ubyte'), labels, gz))


def _rewrite(path, edit, gz=False):
  opener = gzip.open if gz else open
  with opener(path, 'rb') as f:
    raw = bytearray(f.read())
  with opener(path, 'wb') as f:
    f.write(edit(raw))


@pytest.mark.parametrize('gz', [False, True])
@pytest.mark.parametrize('which, edit, match', [
    pytest.param('images', lambda raw: raw[:-160], r'train-images-idx3-ubyte(\.gz)? is truncated: '
                 r'the header promises 40 records of 64 bytes \(2560 bytes\), and 2400 bytes '
                 r'follow it \(37 whole records and 32 bytes\)', id='download-cut-short'),
    # Sixteen bytes that promise 2^31 records: before, a rejection was emitted for each one.
    pytest.param('images', lambda raw: raw[:4] + struct.pack('>I', 2**31) + raw[8:],
                 'truncated: the header promises 2147483648 records', id='images-promise-2^31'),
    pytest.param('labels', lambda raw: raw[:4] + struct.pack('>I', 2**31) + raw[8:],
                 'labels-idx1-ubyte(\\.gz)? is truncated', id='labels-promise-2^31'),
    pytest.param('images', lambda raw: raw + b'\0' * 64, 'is longer than its header says',
                 id='trailing-bytes'),
    # 10^5 x 10^5 images: before, a worker tried to read 4 x 10^11 bytes and crashed the process.
    pytest.param('images', lambda raw: raw[:8] + struct.pack('>II', 10**5, 10**5) + raw[16:],
                 'images of 100000x100000 are not images this pipeline reads', id='huge-images'),
    pytest.param('images', lambda raw: raw[:8] + struct.pack('>II', 0, 8) + raw[16:],
                 'images of 0x8 are not images', id='empty-images'),
    pytest.param('labels', lambda raw: raw[:3] + b'\x02' + raw[4:8] + struct.pack('>I', 1) + raw[8:],
                 'records of 1 dimensions \\[1\\]; labels have none', id='labels-with-dims'),
])
def test_an_idx_file_that_disagrees_with_its_header_fails_naming_the_file(tmp_path, gz, which,
                                                                           edit, match):
  images_path, labels_path = _idx_pair(tmp_path, gz=gz)
  _rewrite(images_path if which == 'images' else labels_path, edit, gz)
  with pytest.raises(ValueError, match=match):
    idx.IdxSource(str(tmp_path / 'idx'))


@pytest.mark.parametrize('source', ['idx', 'npz'])
def test_the_policys_pixel_limit_applies_to_array_headers(tmp_path, source):
  pixels, labels = image_data.digits_arrays(10)  # 8x8: 64 pixels each
  data = tmp_path / source
  data.mkdir()
  if source == 'idx':
    image_data.write_idx(str(data / 'train-images-idx3-ubyte'), pixels)
    image_data.write_idx(str(data / 'train-labels-idx1-ubyte'), labels)
  else:
    _write_npz(data / 'all.npz', pixels, labels)
  under = images.ImagePolicy((4, 4, 1), max_pixels=63)
  with pytest.raises(ValueError, match=r'images of 8x8 are not images this pipeline reads '
                                       r'\(1 to 63 pixels; the limit is --data.max_image_pixels'):
    sources.open_source(source, str(data), under)
  at = images.ImagePolicy((4, 4, 1), max_pixels=64)
  assert sources.open_source(source, str(data), at).class_names == [str(v) for v in
                                                                     sorted(set(labels))]


def test_a_raised_pixel_limit_lets_larger_idx_images_through_the_header_check(tmp_path):
  images_path, _ = _idx_pair(tmp_path)
  _rewrite(images_path, lambda raw: raw[:8] + struct.pack('>II', 10**5, 10**5) + raw[16:])
  # Past the size check, the file is then judged by its length, as any other.
  with pytest.raises(ValueError, match='is truncated'):
    sources.open_source('idx', str(tmp_path / 'idx'),
                        images.ImagePolicy((8, 8, 1), max_pixels=10**10))


def test_a_truncated_idx_file_fails_the_component_before_any_record_is_read(tmp_path):
  images_path, _ = _idx_pair(tmp_path, gz=True)
  _rewrite(images_path, lambda raw: raw[:-1000], gz=True)
  with pytest.raises(ValueError, match=r'train-images-idx3-ubyte\.gz is truncated'):
    harness.run(tmp_path / 'out', source='idx', input_base=str(tmp_path / 'idx'),
                image_shape=(8, 8, 1))


def test_a_gz_file_that_is_not_gzip_is_named(tmp_path):
  images_path, _ = _idx_pair(tmp_path, gz=True)
  with open(images_path, 'wb') as f:
    f.write(b'<html>a proxy error page</html>')
  with pytest.raises(ValueError, match=r'train-images-idx3-ubyte\.gz cannot be read: '
                                       'Not a gzipped file'):
    idx.IdxSource(str(tmp_path / 'idx'))


def test_idx_chunks_read_only_their_records(tmp_path):
  pixels, _ = image_data.digits_arrays(25)
  path = image_data.write_idx(str(tmp_path / 'x-images-idx3-ubyte'), pixels, gz=True)
  np.testing.assert_array_equal(idx.read_records(path, 10, 17), pixels[10:17])
  assert idx.file_header(path).dims == (25, 8, 8)


def test_idx_without_labels_file_is_a_clear_error(tmp_path):
  image_data.write_idx(str(tmp_path / 'train-images-idx3-ubyte'), np.zeros((2, 8, 8)))
  with pytest.raises(FileNotFoundError, match='has no labels file train-labels-idx1-ubyte'):
    idx.find_pairs(str(tmp_path))


def test_fashion_mnist_names_its_classes(tmp_path):
  data = tmp_path / 'fashion'
  data.mkdir()
  pixels = np.random.default_rng(0).integers(0, 255, (20, 28, 28), dtype=np.uint8)
  labels = np.arange(20, dtype=np.uint8) % 10
  image_data.write_idx(str(data / 'train-images-idx3-ubyte'), pixels, gz=True)
  image_data.write_idx(str(data / 'train-labels-idx1-ubyte'), labels, gz=True)
  image_data.write_idx(str(data / 't10k-images-idx3-ubyte'), pixels[:5], gz=True)
  image_data.write_idx(str(data / 't10k-labels-idx1-ubyte'), labels[:5], gz=True)
  result = harness.run(tmp_path, source='fashion-mnist', input_base=str(data),
                       image_shape=(28, 28, 1))
  assert result.class_names == list(builtin.FASHION_MNIST_CLASSES)
  names = {value(e, 'label_name').decode() for e in result.splits['train']}
  assert 'Ankle boot' in names and 'T-shirt/top' in names


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
  with pytest.raises(FileNotFoundError, match='apt-get install dataset-fashion-mnist'):
    builtin.FashionMnistSource(str(tmp_path / 'nowhere'))


# ---------------------------------------------------------------------------------------- npz

def _write_npz(path, images_, labels, **extra):
  np.savez(path, images=images_, labels=labels, **extra)


def _npy(array, shape=None) -> bytes:
  """An .npy file of `array`; with `shape`, its header claims that shape instead."""
  buffer = io.BytesIO()
  if shape is None:
    np.lib.format.write_array(buffer, array)
  else:
    np.lib.format.write_array_header_1_0(buffer, {
        'descr': np.lib.format.dtype_to_descr(array.dtype), 'fortran_order': False,
        'shape': shape})
    buffer.write(array.tobytes())
  return buffer.getvalue()


@pytest.mark.parametrize('images_npy, labels_npy, match', [
    pytest.param(lambda p: _npy(p)[:-100], None, r'all\.npz member images\.npy is truncated: the '
                 r'header promises 40 records of 64 bytes \(2560 bytes\), and 2460 bytes follow '
                 r'it \(38 whole records and 28 bytes\)', id='cut-short'),
    pytest.param(lambda p: _npy(p, (2**31, 8, 8)), None,
                 'images.npy is truncated: the header promises 2147483648 records',
                 id='promises-2^31'),
    pytest.param(lambda p: _npy(p, (40, 10**5, 10**5)), None,
                 'images of 100000x100000 are not images', id='huge-images'),
    pytest.param(lambda p: _npy(p.reshape(40, 64)), None, r'images of 1 dimensions \[64\]',
                 id='flat-images'),
    pytest.param(None, lambda l: _npy(l.reshape(40, 1)), r'labels of shape \[40, 1\]',
                 id='labels-2-d'),
    pytest.param(None, lambda l: b'labels', r'labels\.npy is not a \.npy array',
                 id='not-npy'),
])
def test_an_npz_whose_arrays_disagree_with_their_headers_fails_naming_it(
    tmp_path, images_npy, labels_npy, match):
  data = tmp_path / 'npz'
  data.mkdir()
  pixels, labels = image_data.digits_arrays(40)
  with zipfile.ZipFile(data / 'all.npz', 'w', zipfile.ZIP_DEFLATED) as archive:
    archive.writestr('images.npy', (images_npy or _npy)(pixels))
    archive.writestr('labels.npy', (labels_npy or _npy)(labels))
  with pytest.raises(ValueError, match=match):
    npz.NpzSource(str(data))


def test_an_npz_that_is_not_a_zip_is_named(tmp_path):
  (tmp_path / 'all.npz').write_bytes(b'hello')
  with pytest.raises(ValueError, match=r'all\.npz is not a readable \.npz archive'):
    npz.NpzSource(str(tmp_path))


def test_npz_with_class_names_and_given_splits(tmp_path):
  data = tmp_path / 'npz'
  data.mkdir()
  pixels, labels = image_data.digits_arrays(30)
  names = np.array([f'digit {d}' for d in range(10)])
  _write_npz(data / 'train.npz', pixels, labels, class_names=names)
  _write_npz(data / 'test.npz', pixels[:6], labels[:6], class_names=names)
  result = harness.run(tmp_path, source='npz', input_base=str(data), image_shape=(8, 8, 1))
  assert result.class_names == list(names)
  assert len(result.splits['train']) == 30 and len(result.splits['eval']) == 6
  example = next(e for e in result.splits['train'] if value(e, 'source') == b'train.npz:3')
  assert value(example, 'label') == labels[3]
  assert value(example, 'label_name').decode() == f'digit {labels[3]}'


def test_npz_float_images_colour_and_bad_records(tmp_path):
  data = tmp_path / 'npz'
  data.mkdir()
  rng = np.random.default_rng(1)
  pixels = rng.random((20, 6, 6, 3)).astype(np.float32)
  pixels[4] = 3.0                                 # outside [0, 1]
  labels = np.array([5, 7] * 10)
  labels[9] = 9                                   # a third class: fine, no class_names given
  _write_npz(data / 'all.npz', pixels, labels[:19])  # one label short
  result = harness.run(tmp_path, source='npz', input_base=str(data), image_shape=(6, 6, 3),
                       max_bad_fraction=0.2)
  assert result.class_names == ['5', '7', '9']
  assert result.report['rejected_by_reason'] == {'count_mismatch': 1, 'unsupported_mode': 1}
  assert result.report['accepted'] == 18
  first = next(e for e in result.splits['train'] + result.splits['eval']
               if value(e, 'source') == b'all.npz:0')
  restored = images.normalize_image(value(first, 'image'), images.ImagePolicy((6, 6, 3)))
  np.testing.assert_array_equal(restored, np.round(pixels[0] * 255).astype(np.uint8))


def test_npz_label_outside_class_names(tmp_path):
  data = tmp_path / 'npz'
  data.mkdir()
  pixels, labels = image_data.digits_arrays(10)
  labels = labels.astype(np.int64)
  labels[2] = 12
  _write_npz(data / 'd.npz', pixels, labels, class_names=np.array([str(d) for d in range(10)]))
  result = harness.run(tmp_path, source='npz', input_base=str(data), image_shape=(8, 8, 1),
                       max_bad_fraction=0.5)
  assert result.report['rejected_by_reason'] == {'label_out_of_range': 1}


def test_npz_reads_row_ranges(tmp_path):
  pixels, labels = image_data.digits_arrays(30)
  _write_npz(tmp_path / 'a.npz', pixels, labels)
  np.testing.assert_array_equal(npz.read_member(str(tmp_path / 'a.npz'), 'images', 7, 12),
                                pixels[7:12])


def test_npz_without_labels_is_a_clear_error(tmp_path):
  np.savez(tmp_path / 'a.npz', images=np.zeros((2, 8, 8), np.uint8))
  with pytest.raises(ValueError, match=r"lacks the arrays \['labels'\]"):
    npz.NpzSource(str(tmp_path))


# ----------------------------------------------------------------------------------- TFRecord

def _examples(count, offset=0, names=('zero', 'one')):
  pixels, labels = image_data.digits_arrays(count, offset=offset)
  return [images.make_example(p[..., np.newaxis], int(l) % 2, names[int(l) % 2],
                              f'digits/{offset + i}') for i, (p, l) in enumerate(
                                  zip(pixels, labels))]


def test_tfrecords_pass_through_with_their_labels(tmp_path):
  data = tmp_path / 'records'
  (data / 'train').mkdir(parents=True)
  (data / 'eval').mkdir()
  image_data.write_tfrecord(str(data / 'train' / 'part-0.tfrecord.gz'), _examples(20))
  image_data.write_tfrecord(str(data / 'eval' / 'part-0.tfrecord'), _examples(6, 500), gz=False)
  result = harness.run(tmp_path, source='tfrecord', input_base=str(data), image_shape=(8, 8, 1))
  assert result.class_names == ['zero', 'one']
  assert len(result.splits['train']) == 20 and len(result.splits['eval']) == 6
  assert harness.sources(result.splits['eval'])[0] == 'digits/500'


def test_tfrecords_off_schema_and_corrupt_files_are_rejected(tmp_path):
  data = tmp_path / 'records'
  data.mkdir()
  good = _examples(30)
  missing = _examples(1, 100)[0]
  del missing.features.feature['label_name']
  wrong_type = _examples(1, 101)[0]
  wrong_type.features.feature['label'].ClearField('int64_list')
  wrong_type.features.feature['label'].bytes_list.value.append(b'1')
  lying = _examples(1, 102)[0]
  lying.features.feature['height'].int64_list.value[0] = 9
  not_utf8 = _examples(1, 103)[0]
  not_utf8.features.feature['label_name'].bytes_list.value[0] = b'\xffzero'
  bomb = _examples(1, 104)[0]  # over PIL's own limit, which raises where others return
  bomb.features.feature['image'].bytes_list.value[0] = image_data.png_header_only(20_000, 10_000)
  image_data.write_tfrecord(str(data / 'a.tfrecord'),
                            good + [missing, wrong_type, lying, not_utf8, bomb], gz=False)
  image_data.write_tfrecord(str(data / 'b.tfrecord'), [b'\x00garbage'], gz=False)
  with open(data / 'c.tfrecord', 'wb') as f:
    f.write(b'not a tfrecord file at all, just bytes')
  result = harness.run(tmp_path, source='tfrecord', input_base=str(data), image_shape=(8, 8, 1),
                       max_bad_fraction=0.5)
  by_source = {r['source']: r for r in result.report['rejected_records']}
  assert result.report['rejected_by_reason'] == {'schema_mismatch': 5, 'unreadable': 1,
                                                 'too_large': 1}
  assert "feature 'label_name' is missing" in by_source['digits/100']['detail']
  assert "label_name b'\\xffzero' is not UTF-8" in by_source['digits/103']['detail']
  assert '200000000 pixels' in by_source['digits/104']['detail']
  assert "feature 'label' is bytes_list, expected int64_list" in by_source['digits/101']['detail']
  assert 'height/width say 9x8' in by_source['digits/102']['detail']
  assert by_source['b.tfrecord:0']['reason'] == 'schema_mismatch'
  assert by_source['c.tfrecord:0']['reason'] == 'unreadable'
  assert result.report['accepted'] == 30


def test_tfrecord_labels_must_name_consistently(tmp_path):
  data = tmp_path / 'records'
  data.mkdir()
  clash = _examples(4)
  clash[0].features.feature['label_name'].bytes_list.value[0] = b'other'
  clash[0].features.feature['label'].int64_list.value[0] = 1
  clash[1].features.feature['label'].int64_list.value[0] = 1
  clash[1].features.feature['label_name'].bytes_list.value[0] = b'one'
  image_data.write_tfrecord(str(data / 'a.tfrecord.gz'), clash)
  with pytest.raises(report.IngestionError, match="label 1 is named both"):
    harness.run(tmp_path, source='tfrecord', input_base=str(data), image_shape=(8, 8, 1))


def test_reading_our_own_output_back(tmp_path):
  first = harness.run(tmp_path / 'first', source='digits', image_shape=(8, 8, 1))
  again = harness.run(tmp_path / 'again', source='tfrecord',
                      input_base=os.path.join(str(tmp_path / 'first'), 'examples'),
                      image_shape=(8, 8, 1))
  assert again.class_names == first.class_names
  total = sum(len(v) for v in again.splits.values())
  assert total == 1797 and again.report['rejected'] == 0
