"""tfhub.dev's documentation rules (tfhub_rules.py) applied to files: our own checks, not its code.

Unlike the validator, which stops at the first problem, each check returns every problem it
finds, as one line each, so that a test can compare the whole list.
"""

import fnmatch
import os
import posixpath
import re
import tarfile
from typing import BinaryIO, Dict, List, Optional, Set, Tuple
import urllib.error
import urllib.request

from google.protobuf import message
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2

from tests.components.hub_publisher import tfhub_rules as rules

_TAG_LINE = re.compile(r'<!--(?P<key>[\w\s-]+):(?P<value>.+)-->')
# Tags whose values are not enumerations: asset-path is checked on its own, and the validator
# has no list for fine-tunable or format (format is checked against FORMATS).
_FREE_TAGS = frozenset({'asset-path', 'fine-tunable', 'format'})


def parse_tags(lines: List[str]) -> Tuple[Dict[str, Set[str]], List[str]]:
  """The tags after the handle line and description, and the problems met reading them."""
  problems = []
  index = 2 if len(lines) > 1 and not lines[1] else 1
  description = []
  while index < len(lines) and lines[index] and not lines[index].startswith('<!--'):
    description.append(lines[index])
    index += 1
  if not description:
    problems.append('no description after the handle line')
  tags: Dict[str, Set[str]] = {}
  for line in lines[index:]:
    if line.startswith('#'):
      break
    if not line or line.startswith(rules.ICON_LINE_PREFIX):
      continue
    match = _TAG_LINE.fullmatch(line)
    if match:
      tags.setdefault(match['key'].strip(), set()).add(match['value'].strip())
    else:
      problems.append(f'unexpected line among the tags: {line!r}')
  return tags, problems


def _check_asset_path(values: Set[str]) -> List[str]:
  if len(values) != 1:
    return [f'asset-path given {len(values)} times']
  (asset,) = values
  if not asset.endswith(rules.ASSET_SUFFIX):
    return [f'asset-path {asset} does not end with {rules.ASSET_SUFFIX}']
  if asset.startswith(rules.UNFETCHABLE_ASSET_PREFIXES):
    return [f'asset-path {asset} is on github.com, whose robots.txt forbids the fetch']
  return []


def check_tags(tags: Dict[str, Set[str]], required: frozenset,
               optional: frozenset) -> List[str]:
  """What is wrong with a document's tags, given the tags its kind requires and allows."""
  problems = []
  missing = required - tags.keys()
  if missing:
    problems.append(f'missing required tags: {sorted(missing)}')
  unsupported = tags.keys() - required - optional
  if unsupported:
    problems.append(f'unsupported tags: {sorted(unsupported)}')
  repeated = sorted(k for k, v in tags.items() if len(v) > 1 and k not in rules.REPEATABLE_TAGS)
  if repeated:
    problems.append(f'tags given more than once: {repeated}')
  for key in sorted(tags.keys() - unsupported - _FREE_TAGS):
    allowed = rules.TAG_VALUES.get(key)
    if allowed is None:
      problems.append(f'{key}: its allowed values are not recorded in tfhub_rules.py')
      continue
    unknown = sorted(tags[key] - set(allowed))
    if unknown:
      problems.append(f'{key}: {unknown} not in its tags/*.yaml list')
  bad_tasks = sorted(t for t in tags.get('task', ()) if not t.startswith(rules.TASK_PREFIXES))
  if bad_tasks:
    problems.append(f'task: {bad_tasks} do not start with one of {rules.TASK_PREFIXES}')
  formats = tags.get('format', set())
  if formats and not formats <= set(rules.FORMATS):
    problems.append(f'format: {sorted(formats)} is not one of {rules.FORMATS}')
  if 'asset-path' in tags:
    problems += _check_asset_path(tags['asset-path'])
  return problems


def check_documentation(docs_root: str, relative_path: str) -> List[str]:
  """Every rule the document at `docs_root/relative_path` breaks; [] when it passes.

  The asset is not fetched here: see `check_asset`.
  """
  with open(os.path.join(docs_root, relative_path), encoding='utf-8') as f:
    lines = f.read().split('\n')
  module = re.fullmatch(rules.MODULE_HANDLE_LINE, lines[0])
  publisher_page = re.fullmatch(rules.PUBLISHER_HANDLE_LINE, lines[0])
  if not (module or publisher_page):
    return [f'the first line, {lines[0]!r}, is neither a module nor a publisher handle']
  publisher = (module or publisher_page)['publisher']
  page = rules.PUBLISHER_PAGE_PATH.format(publisher=publisher)
  problems = []
  if not os.path.isfile(os.path.join(docs_root, page)):
    problems.append(f'no publisher page {page}')
  if module:
    places = [p.format(**module.groupdict()) for p in rules.MODULE_DOC_PATHS]
    required, optional = rules.MODULE_REQUIRED_TAGS, rules.MODULE_OPTIONAL_TAGS
  else:
    places, required, optional = [page], frozenset(), frozenset()
  if relative_path not in places:
    problems.append(f'{relative_path} is not where its handle puts it: one of {places}')
  tags, parse_problems = parse_tags(lines)
  return problems + parse_problems + check_tags(tags, required, optional)


def asset_path(docs_root: str, relative_path: str) -> Optional[str]:
  with open(os.path.join(docs_root, relative_path), encoding='utf-8') as f:
    tags, _ = parse_tags(f.read().split('\n'))
  values = sorted(tags.get('asset-path', ()))
  return values[0] if values else None


def check_archive(stream: BinaryIO) -> List[str]:
  """What is wrong with a module archive, read as a stream as the validator downloads it."""
  problems, parsed = [], False
  try:
    with tarfile.open(fileobj=stream, mode='r|gz') as archive:
      for member in archive:
        if not member.isfile():
          continue
        path = posixpath.normpath(member.name)
        if not all(re.fullmatch(rules.ARCHIVE_NAME_PART, part) for part in path.split('/')):
          problems.append(f'invalid file path: {path}')
        elif not any(fnmatch.fnmatch(path, p) for p in rules.ARCHIVE_PATTERNS):
          problems.append(f'not a SavedModel file: {path}')
        elif posixpath.basename(path) in ('saved_model.pb', 'saved_model.pbtxt'):
          data = archive.extractfile(member).read()
          try:
            if path.endswith('.pb'):
              saved_model_pb2.SavedModel.FromString(data)
            else:
              text_format.Parse(data.decode('utf-8'), saved_model_pb2.SavedModel())
            parsed = True
          except (message.DecodeError, text_format.ParseError) as error:
            problems.append(f'{path} does not parse as a SavedModel: {error}')
  except tarfile.TarError as error:
    problems.append(f'not a readable .tar.gz: {error}')
  if not parsed:
    problems.append('no saved_model.pb or saved_model.pbtxt that parses')
  return problems


def check_asset(url: str) -> List[str]:
  """Downloads the asset as the validator's smoke test does (urllib) and checks the archive."""
  try:
    response = urllib.request.urlopen(url, timeout=60)  # pylint: disable=consider-using-with
  except (ValueError, urllib.error.URLError) as error:
    return [f'the asset {url} cannot be downloaded: {error}']
  with response:
    return check_archive(response)
