"""What the configuration may ask ImageExampleGen for is what ImageExampleGen does."""

import pytest

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen import sources


def test_every_source_name_opens_a_source():
  assert sources.SOURCES == options.SOURCES


def test_sources_of_any_size_have_a_default_shape_and_need_a_folder():
  any_size = {name for name, shape in options.NATIVE_SHAPES.items() if shape is None}
  assert set(options.DEFAULT_SHAPES) == any_size
  assert set(options.NEEDS_INPUT_BASE) == any_size
  assert set(sources.BUILT_IN) <= set(options.SOURCES) - any_size


@pytest.mark.parametrize('name', options.FORMAT_NAMES)
def test_every_format_name_is_accepted_by_the_image_policy(name):
  assert images.ImagePolicy((8, 8, 1), formats=(name,)).formats == (name,)


def test_a_format_outside_the_list_is_refused():
  with pytest.raises(ValueError, match=r"unknown image formats \['heic'\]"):
    images.ImagePolicy((8, 8, 1), formats=('heic',))


@pytest.mark.parametrize('policy', options.WRONG_SIZE_POLICIES)
def test_every_size_policy_is_accepted(policy):
  assert images.ImagePolicy((8, 8, 1), on_wrong_size=policy).on_wrong_size == policy
