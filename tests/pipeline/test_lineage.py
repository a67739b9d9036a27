"""`ganpipe lineage`: a pushed model traced back through a hand-built ML Metadata store."""

import json

import pytest

from ganpipe.app import cli
from ganpipe.pipeline import lineage
from tests.pipeline import mlmd_writer


@pytest.fixture
def metadata(tmp_path):
  """Two runs: the second's evaluator compares its model with the first's (a baseline)."""
  path = str(tmp_path / 'metadata.sqlite')
  store = mlmd_writer.MlmdWriter(path)
  old_model = store.artifact('Model', '/p/trainer/model/1')
  store.execution('trainer', 'run-1', {}, {'model': old_model})
  examples = store.artifact('Examples', '/p/image_example_gen/examples/2', span=0,
                            input_fingerprint='files:3:abc')
  store.execution('image_example_gen', 'run-2', {}, {'examples': examples},
                  source='folder', input_base='/data/flowers')
  model = store.artifact('Model', '/p/trainer/model/2')
  store.execution('trainer', 'run-2', {'examples': examples}, {'model': model},
                  custom_config='{"epochs": 3}')
  blessing = store.artifact('ModelBlessing', '/p/evaluator/blessing/2', blessed=1)
  store.execution('evaluator', 'run-2',
                  {'model': model, 'baseline_model': old_model, 'examples': examples},
                  {'blessing': blessing})
  pushed = store.artifact('PushedModel', '/p/pusher/pushed_model/2', pushed=1,
                          pushed_destination='/serving/classifier/1700000000')
  store.execution('pusher', 'run-2', {'model': model, 'model_blessing': blessing},
                  {'pushed_model': pushed})
  return path


def test_a_pushed_model_is_traced_back_to_the_images_within_its_run(metadata):
  found = lineage.trace(metadata, 'ganpipe', '/serving/classifier/1700000000/')
  nodes = {execution.node for execution in found.executions.values()}
  assert nodes == {'pusher', 'evaluator', 'trainer', 'image_example_gen'}
  assert {e.run for e in found.executions.values()} == {'run-2'}
  by_uri = {a.uri: a for a in found.artifacts.values()}
  # The baseline came from run-1: named with its run, not expanded into run-1's executions.
  assert by_uri['/p/trainer/model/1'].from_run == 'run-1'
  assert by_uri['/p/trainer/model/1'].producer is None
  ingestion = found.executions[by_uri['/p/image_example_gen/examples/2'].producer]
  assert ingestion.properties == {'source': 'folder', 'input_base': '/data/flowers'}
  trainer = found.executions[by_uri['/p/trainer/model/2'].producer]
  assert trainer.inputs == [('examples', by_uri['/p/image_example_gen/examples/2'].id)]


def test_the_tree_names_what_it_already_showed(metadata):
  text = lineage.format_lineage(lineage.trace(metadata, 'ganpipe', '/p/pusher/pushed_model/2'))
  lines = text.splitlines()
  assert lines[0] == 'Lineage of /p/pusher/pushed_model/2 (run run-2)'
  assert lines[1].startswith('PushedModel ') and lines[1].endswith('/p/pusher/pushed_model/2')
  assert 'pushed=1 pushed_destination=/serving/classifier/1700000000' in text
  assert sum('made by trainer (execution' in line and 'shown above' not in line
             for line in lines) == 1
  assert any(line.strip().startswith('model: Model') and 'shown above' in line for line in lines)
  assert 'made in an earlier run, run-1' in text
  assert 'input_fingerprint=files:3:abc' in text and 'source=folder' in text


def test_unknown_target_is_a_clear_error(metadata, tmp_path):
  with pytest.raises(lineage.LineageError, match='no artifact in the metadata store is at /x'):
    lineage.trace(metadata, 'ganpipe', '/x')
  with pytest.raises(lineage.LineageError, match='no metadata store at'):
    lineage.trace(str(tmp_path / 'absent.sqlite'), 'ganpipe', '/x')
  (tmp_path / 'notes.txt').write_text('not a database, but long enough to look like a file ' * 40)
  with pytest.raises(lineage.LineageError,
                     match='notes.txt is not an ML Metadata store: file is not a database'):
    lineage.trace(str(tmp_path / 'notes.txt'), 'ganpipe', '/x')


def test_the_store_is_opened_read_only(tmp_path):
  # Opened for writing, as MLMD opens by default, an empty file would get MLMD's tables and
  # become an empty store; a query must never write into the file it is given.
  empty = tmp_path / 'metadata.sqlite'
  empty.write_bytes(b'')
  with pytest.raises(lineage.LineageError, match='it holds no ML Metadata tables'):
    lineage.trace(str(empty), 'ganpipe', '/x')
  assert empty.stat().st_size == 0


def test_cli_prints_the_tree_or_json(metadata, capsys):
  assert cli.main(['lineage', '/serving/classifier/1700000000',
                   '--paths.metadata_path', metadata]) == 0
  out = capsys.readouterr().out
  assert out.startswith('Lineage of /serving/classifier/1700000000 (run run-2)')
  assert cli.main(['lineage', '/serving/classifier/1700000000', '--json',
                   '--paths.metadata_path', metadata]) == 0
  found = json.loads(capsys.readouterr().out)
  assert found['target'] == '/serving/classifier/1700000000'
  assert len(found['executions']) == 4
  assert cli.main(['lineage', '/nowhere', '--paths.metadata_path', metadata]) == cli.EXIT_FAILED
  assert capsys.readouterr().err == (
      f"ganpipe: error: nothing is at '/nowhere', and no artifact in {metadata} was there. Fix: "
      'pass a serving version folder (outputs/serving/<model>/<version>), a TF Hub module folder '
      '(outputs/hub/<publisher>/<module>/<version>) or an artifact URI\n')


def test_cli_blames_the_store_for_a_folder_it_has_no_record_of(metadata, tmp_path, capsys):
  (tmp_path / 'serving' / 'classifier' / '5').mkdir(parents=True)
  target = str(tmp_path / 'serving' / 'classifier' / '5')
  assert cli.main(['lineage', target, '--paths.metadata_path', metadata]) == cli.EXIT_FAILED
  err = capsys.readouterr().err
  assert err.startswith(f'ganpipe: error: no artifact in the metadata store is at {target}')
  assert err.endswith('Fix: pass --paths.metadata_path with the store of the run that made it\n')


def test_cli_names_a_missing_store_before_anything_else(tmp_path, capsys):
  absent = str(tmp_path / 'absent.sqlite')
  assert cli.main(['lineage', '/nowhere', '--paths.metadata_path', absent]) == cli.EXIT_FAILED
  assert capsys.readouterr().err.startswith(f'ganpipe: error: no metadata store at {absent}: ')


def test_status_names_a_file_that_is_not_a_store(tmp_path, capsys):
  (tmp_path / 'notes.txt').write_text('not a database, but long enough to look like a file ' * 40)
  assert cli.main(['status', '--paths.metadata_path', str(tmp_path / 'notes.txt')]) == (
      cli.EXIT_FAILED)
  err = capsys.readouterr().err
  assert 'notes.txt is not an ML Metadata store: file is not a database' in err
  assert 'Traceback' not in err
