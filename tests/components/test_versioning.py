"""What both publishers share: a model's fingerprint, and whether the newest version holds it."""

import os

from ganpipe.components import versioning


def _model(path, weights=b'w1', warmup=None, readme=None):
  os.makedirs(os.path.join(path, 'variables'))
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'graph')
  with open(os.path.join(path, 'variables', 'variables.data-00000-of-00001'), 'wb') as f:
    f.write(weights)
  if warmup is not None:
    os.makedirs(os.path.join(path, 'assets.extra'))
    with open(os.path.join(path, 'assets.extra', 'tf_serving_warmup_requests'), 'wb') as f:
      f.write(warmup)
  if readme is not None:
    with open(os.path.join(path, 'README.md'), 'w') as f:
      f.write(readme)
  return str(path)


def test_the_fingerprint_is_the_model_not_its_warmup_or_readme(tmp_path):
  plain = versioning.model_fingerprint(_model(tmp_path / 'plain'))
  assert versioning.model_fingerprint(_model(tmp_path / 'served', warmup=b'requests')) == plain
  assert versioning.model_fingerprint(_model(tmp_path / 'module', readme='# Module')) == plain
  assert versioning.model_fingerprint(_model(tmp_path / 'retrained', weights=b'w2')) != plain
  # A file moved is a change too, though the bytes are the same.
  moved = _model(tmp_path / 'moved')
  os.rename(os.path.join(moved, 'variables'), os.path.join(moved, 'weights'))
  assert versioning.model_fingerprint(moved) != plain


def test_only_the_newest_version_holding_the_model_counts_as_unchanged(tmp_path):
  candidate = _model(tmp_path / 'candidate', warmup=b'new requests')
  root = tmp_path / 'serving' / 'generator'
  assert versioning.latest_if_unchanged(candidate, str(root)) is None  # nothing pushed yet
  _model(root / '5', warmup=b'old requests')
  assert versioning.latest_if_unchanged(candidate, str(root)) == (5, str(root / '5'))
  _model(root / '6', weights=b'w2')  # a newer, different model serves now: a rollback is a push
  assert versioning.latest_if_unchanged(candidate, str(root)) is None
