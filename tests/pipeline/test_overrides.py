"""Each configuration field's help, read from its class's `Attributes:` docstring section."""

import dataclasses
import typing

from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides


def _config_classes(cls=config_lib.PipelineConfig):
  yield cls
  hints = typing.get_type_hints(cls)
  for field in dataclasses.fields(cls):
    if dataclasses.is_dataclass(hints[field.name]):
      yield from _config_classes(hints[field.name])


def test_every_field_has_help():
  described = config_overrides.field_help()
  missing = [name for name, _ in config_overrides.field_paths() if not described.get(name)]
  assert missing == []


def test_every_documented_attribute_is_a_field():
  for cls in _config_classes():
    documented = set(config_overrides._attributes(cls))  # pylint: disable=protected-access
    fields = {field.name for field in dataclasses.fields(cls)}
    assert documented - fields == set(), cls.__name__


def test_attributes_section_entries_join_their_continuation_lines():

  @dataclasses.dataclass(frozen=True)
  class Section:
    """A section.

    Attributes:
      size: the first line,
        and the second.
      name: one line.

    Later text is not an attribute.
    """
    size: int = 1
    name: str = ''

  assert config_overrides._attributes(Section) == {  # pylint: disable=protected-access
      'size': 'the first line, and the second.', 'name': 'one line.'}
