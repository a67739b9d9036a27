"""ImageExampleGen's spans: TFX's span resolution, a fingerprint per span, the span's artifact."""

import os

import numpy as np
import pytest
from tfx.orchestration.portable import data_types
from tfx.types import standard_artifacts

from ganpipe.components.image_example_gen import component
from ganpipe.components.image_example_gen import driver
from tests import image_data
from tests.components.image_example_gen import executor_harness as harness


def _resolve(input_base, span_pattern='span-{SPAN}', source='folder'):
  """Runs the driver as the portable launcher does; returns (exec properties, Examples)."""
  gen = component.ImageExampleGen(source=source, image_shape=(8, 8, 1), input_base=input_base,
                                  span_pattern=span_pattern)
  info = data_types.ExecutionInfo(exec_properties=harness.exec_properties_of(gen),
                                  output_dict={'examples': [standard_artifacts.Examples()]})
  output = driver.ImageExampleGenDriver(metadata_handle=None).run(info)
  properties = {key: getattr(value, value.WhichOneof('value'))
                for key, value in output.exec_properties.items()}
  examples = standard_artifacts.Examples()
  examples.set_mlmd_artifact(output.output_artifacts['examples'].artifacts[0])
  return properties, examples


def _span(root, span, per_class, offset=0):
  image_data.write_class_folders(os.path.join(root, f'span-{span}'), per_class, offset=offset)


def test_the_newest_span_is_resolved_and_lands_on_the_examples_artifact(tmp_path):
  for span in (1, 2, 10):
    _span(tmp_path, span, {'digit_1': 2, 'digit_2': 2})
  properties, examples = _resolve(str(tmp_path))
  assert properties['span'] == 10
  assert '"span-10"' in properties['input_config']
  # As TFX's driver writes it (a custom property), and as Artifact.span reads it (a property).
  assert examples.span == 10
  assert examples.get_int_custom_property('span') == 10
  assert examples.get_string_custom_property('input_fingerprint') == properties[
      'input_fingerprint']


def test_version_is_resolved_with_the_span(tmp_path):
  for span, version in ((1, 0), (2, 0), (2, 3)):
    _span(tmp_path, f'{span}/v{version}', {'digit_1': 1})
  properties, examples = _resolve(str(tmp_path), 'span-{SPAN}/v{VERSION}')
  assert (properties['span'], properties['version']) == (2, 3)
  assert (examples.span, examples.version) == (2, 3)


def test_the_fingerprint_covers_only_the_resolved_span(tmp_path):
  _span(tmp_path, 1, {'digit_1': 2})
  _span(tmp_path, 2, {'digit_1': 2})
  first = _resolve(str(tmp_path))[0]['input_fingerprint']
  assert _resolve(str(tmp_path))[0]['input_fingerprint'] == first  # no new span: a cache hit
  _span(tmp_path, 1, {'digit_2': 3})  # an older span changes: not what this run reads
  assert _resolve(str(tmp_path))[0]['input_fingerprint'] == first
  _span(tmp_path, 2, {'digit_2': 1})  # the span read changes
  second = _resolve(str(tmp_path))[0]['input_fingerprint']
  assert second != first
  _span(tmp_path, 3, {'digit_1': 2, 'digit_2': 1})  # same files as span 2, but a new span
  third = _resolve(str(tmp_path))
  assert third[0]['span'] == 3 and third[0]['input_fingerprint'] != second


def test_the_executor_reads_only_the_resolved_span(tmp_path):
  data = tmp_path / 'data'
  _span(data, 1, {'digit_1': 3, 'digit_2': 3})
  _span(data, 2, {'digit_1': 2, 'digit_3': 4}, offset=50)
  properties, _ = _resolve(str(data))
  result = harness.run(tmp_path / 'out', exec_properties=properties)
  assert result.class_names == ['digit_1', 'digit_3']
  assert sum(result.report['accepted_by_split'].values()) == 6


def test_without_a_driver_the_executor_resolves_the_newest_span_itself(tmp_path):
  # As on Kubeflow Pipelines' open-source backend, which never runs ExampleGen's driver.
  data = tmp_path / 'data'
  _span(data, 1, {'digit_1': 3})
  _span(data, 2, {'digit_1': 2, 'digit_3': 4}, offset=50)
  result = harness.run(tmp_path / 'out', source='folder', input_base=str(data),
                       image_shape=(8, 8, 1), span_pattern='span-{SPAN}')
  assert result.class_names == ['digit_1', 'digit_3']
  assert result.examples.span == 2 and result.examples.get_int_custom_property('span') == 2


def test_a_source_without_spans_is_span_0_over_the_whole_folder(tmp_path):
  image_data.write_class_folders(str(tmp_path), {'digit_1': 2})
  properties, examples = _resolve(str(tmp_path), span_pattern=None)
  assert properties['span'] == 0 and examples.span == 0
  assert properties['input_fingerprint'] == driver.source_fingerprint('folder', str(tmp_path))


def test_no_span_folder_is_one_clear_error(tmp_path):
  image_data.write_class_folders(str(tmp_path), {'digit_1': 2})
  with pytest.raises(ValueError, match=r'no span of .*span-\{SPAN\} could be read: Cannot find '
                     r'matching .*Fix: lay the data out as span-\{SPAN\} folders'):
    _resolve(str(tmp_path))


def test_an_npz_source_reads_its_span_folder(tmp_path):
  images, labels = image_data.digits_arrays(30)
  for span in (1, 2):
    os.makedirs(tmp_path / f'day-{span}')
    np.savez(tmp_path / f'day-{span}' / 'data.npz', images=images[:10 * span],
             labels=labels[:10 * span])
  properties, examples = _resolve(str(tmp_path), 'day-{SPAN}', source='npz')
  assert examples.span == 2
  result = harness.run(tmp_path / 'out', exec_properties=properties)
  assert sum(result.report['accepted_by_split'].values()) == 20
