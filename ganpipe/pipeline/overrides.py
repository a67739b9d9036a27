"""Overriding PipelineConfig fields by dotted name: each leaf field is a flag `--section.field`.

`field_paths` lists the names and types, `field_help` each field's line of help (from its
class's Attributes docstring section), `parse_value` reads a flag's text as its field's type,
`with_overrides` returns the config with fields replaced (validated again), and `to_dict` gives a
JSON-serialisable form of any config section.
"""

import dataclasses
import inspect
import re
import typing
from typing import Any, Dict

from ganpipe.pipeline import config as config_lib


def field_paths(config_cls=config_lib.PipelineConfig, prefix: str = ''):
  """Yields (dotted name, type) for every leaf field of a config class."""
  hints = typing.get_type_hints(config_cls)
  for field in dataclasses.fields(config_cls):
    name = prefix + field.name
    if dataclasses.is_dataclass(hints[field.name]):
      yield from field_paths(hints[field.name], name + '.')
    else:
      yield name, hints[field.name]


def field_help(config_cls=config_lib.PipelineConfig, prefix: str = '') -> Dict[str, str]:
  """Dotted name -> help, for every leaf field, from each class's `Attributes:` docstring section.

  The docstrings are the one place a field is described, so `--help` and the code cannot drift:
  tests/pipeline/test_overrides.py requires an entry for every field and a field for every entry.
  """
  hints = typing.get_type_hints(config_cls)
  described = _attributes(config_cls)
  found = {}
  for field in dataclasses.fields(config_cls):
    if dataclasses.is_dataclass(hints[field.name]):
      found.update(field_help(hints[field.name], f'{prefix}{field.name}.'))
    elif field.name in described:
      found[prefix + field.name] = described[field.name]
  return found


def _attributes(cls) -> Dict[str, str]:
  """The entries of a Google-style `Attributes:` section: name -> its text, on one line."""
  lines = inspect.cleandoc(cls.__doc__ or '').splitlines()
  if 'Attributes:' not in lines:
    return {}
  entries: Dict[str, str] = {}
  name = None
  for line in lines[lines.index('Attributes:') + 1:]:
    if not line.strip():
      break
    entry = re.match(r'^  (\w+): (.*)$', line)
    if entry:
      name = entry.group(1)
      entries[name] = entry.group(2).strip()
    elif name and line.startswith('    '):
      entries[name] += ' ' + line.strip()
    else:
      break
  return entries


def parse_value(text: str, hint: Any, option: str) -> Any:
  """Parses a command-line string into a value of the field's type hint."""
  origin = typing.get_origin(hint)
  args = typing.get_args(hint)
  if origin is typing.Union and type(None) in args:
    if text.strip().lower() in ('none', ''):
      return None
    return parse_value(text, next(a for a in args if a is not type(None)), option)
  if origin is tuple:
    items = [item for item in text.split(',') if item.strip()]
    item_type = args[0]
    return tuple(parse_value(item.strip(), item_type, option) for item in items)
  if hint is bool:
    lowered = text.strip().lower()
    config_lib.check(lowered in ('true', 'false', '1', '0', 'yes', 'no'), option,
                     f'expected true or false, got {text!r}', f'pass --{option} true or false')
    return lowered in ('true', '1', 'yes')
  try:
    return hint(text)
  except ValueError:
    raise config_lib.ConfigError(option, f'expected {hint.__name__}, got {text!r}',
                                 f'pass --{option} with a value of type {hint.__name__}') from None


def with_overrides(config: config_lib.PipelineConfig,
                   overrides: Dict[str, Any]) -> config_lib.PipelineConfig:
  """Returns `config` with dotted-name fields replaced; validation runs again."""
  nested: Dict[str, Dict[str, Any]] = {}
  top: Dict[str, Any] = {}
  for dotted, value in overrides.items():
    if '.' in dotted:
      section, field = dotted.split('.', 1)
      nested.setdefault(section, {})[field] = value
    else:
      top[dotted] = value
  for section, fields in nested.items():
    top[section] = dataclasses.replace(getattr(config, section), **fields)
  return dataclasses.replace(config, **top)


def to_dict(config) -> Dict[str, Any]:
  """A JSON-serialisable dict of a config (tuples become lists)."""
  return dataclasses.asdict(config)
