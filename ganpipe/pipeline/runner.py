"""Running the pipeline with TFX's Beam or local DAG runner, and summarising the run.

TFX, Beam and TensorFlow load only once a run starts or a store is read: everything `preflight`
checks is checked with the standard library, so a bad folder or path is reported in a second.
"""

import os
import typing
from typing import Iterator, Optional, Tuple

from ganpipe.components import beam_staging
from ganpipe.components.image_example_gen import options
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import nodes
from ganpipe.pipeline import store_lock

if typing.TYPE_CHECKING:
  from ganpipe.pipeline import run_summary

# The file name extensions of each accepted encoding (options.FORMATS), as Keras'
# image_dataset_from_directory matches them (tf_keras/src/utils/dataset_utils.py, ALLOWLIST_FORMATS
# in image_dataset.py), plus the formats it does not read.
_EXTENSIONS = {'png': ('.png',), 'jpeg': ('.jpg', '.jpeg'), 'jpg': ('.jpg', '.jpeg'),
               'bmp': ('.bmp',), 'gif': ('.gif',), 'tiff': ('.tif', '.tiff'), 'webp': ('.webp',)}


def preflight(config: config_lib.PipelineConfig) -> None:
  """Checks what can be checked before any component starts, without loading TensorFlow.

  Raises:
    ConfigError: a configured input does not exist, or holds nothing the source can read.
  """
  data = config.data
  if data.data_dir:
    _check_data_dir(data)
  paths = config.paths
  for option, path, is_file in (('paths.pipeline_root', paths.pipeline_root, False),
                                ('paths.metadata_path', paths.metadata_path, True),
                                ('paths.serving_root', paths.serving_root, False),
                                ('paths.hub_root', paths.hub_root, False)):
    in_the_way = _file_in_the_way(os.path.dirname(path) if is_file else path)
    if in_the_way:
      raise config_lib.ConfigError(option, f'{path!r} cannot be written: {in_the_way!r} is a '
                                   'file, not a folder', f'pass --{option} with another path')
  if data.dataset == options.FASHION_MNIST and not data.data_dir:
    # Only here: the source module loads Beam and TensorFlow, which the run loads next anyway.
    # pylint: disable-next=import-outside-toplevel
    from ganpipe.components.image_example_gen.sources import builtin
    if not os.path.isdir(builtin.FASHION_MNIST_DIR):
      raise config_lib.ConfigError(
          'data.dataset', f'Fashion-MNIST is not installed at {builtin.FASHION_MNIST_DIR}',
          builtin.FASHION_MNIST_INSTALL)
  if data.schema_path and _is_local(data.schema_path) and not os.path.exists(data.schema_path):
    raise config_lib.ConfigError('data.schema_path', f'file {data.schema_path!r} does not exist',
                                 'pass --data.schema_path with a schema.pbtxt file, or omit it')


def _is_local(path: str) -> bool:
  return '://' not in path


def _check_data_dir(data: config_lib.DataConfig) -> None:
  """A local data folder must exist and hold something to read; a folder tree, an image file.

  Object-store folders are left to ingestion, which reads them through TensorFlow.
  """
  folder = data.data_dir
  if not _is_local(folder):
    return
  fix = 'pass --data.data_dir with an existing image folder'
  if not os.path.isdir(folder):
    problem = 'is a file, not a folder' if os.path.exists(folder) else 'does not exist'
    raise config_lib.ConfigError('data.data_dir', f'folder {folder!r} {problem}', fix)
  if data.span_pattern:
    return  # each span is a folder of its own, which the ingestion driver resolves and checks
  if data.dataset != options.FOLDER:
    if not any(True for _ in _files_under(folder)):
      raise config_lib.ConfigError('data.data_dir', f'folder {folder!r} holds no files',
                                   f'pass --data.data_dir with the folder of the {data.dataset} '
                                   'files')
    return
  layout = ('root/<class_name>/<image files>, or with given splits root/train/<class_name>/ and '
            'root/test/<class_name>/')
  classes = [entry for entry in sorted(os.listdir(folder))
             if os.path.isdir(os.path.join(folder, entry))]
  if not classes:
    raise config_lib.ConfigError(
        'data.data_dir', f'folder {folder!r} has no class folders' +
        (', only files' if os.listdir(folder) else ''),
        f'lay the images out as {layout}')
  extensions = tuple(sorted({ext for name in data.formats for ext in _EXTENSIONS[name]}))
  others = []
  for class_dir in classes:
    for path in _files_under(os.path.join(folder, class_dir)):
      if path.lower().endswith(extensions):
        return
      others.append(os.path.relpath(path, folder))
  found = (f'its class folders hold {len(others)} other file{"s" * (len(others) > 1)}, such as '
           f'{others[0]!r}' if others else
           f'its class folders ({", ".join(classes[:5])}{", ..." * (len(classes) > 5)}) '
           'are empty')
  raise config_lib.ConfigError(
      'data.data_dir', f'folder {folder!r} holds no image file ({", ".join(extensions)}): '
      f'{found}', f'put the images in {layout}' + (
          '; or pass --data.formats with the formats they are in' if others else ''))


def _files_under(top: str) -> Iterator[str]:
  """Every file under `top`, following links to folders but never into one twice."""
  seen = set()
  for folder, subdirs, names in os.walk(top, followlinks=True):
    real = os.path.realpath(folder)
    if real in seen:
      subdirs[:] = []
      continue
    seen.add(real)
    subdirs.sort()
    for name in sorted(names):
      yield os.path.join(folder, name)


def _file_in_the_way(folder: str) -> Optional[str]:
  """The file that keeps local `folder` from being a folder, if any: it, or one above it."""
  if not folder or not _is_local(folder):
    return None
  path = os.path.abspath(folder)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return None if os.path.isdir(path) else path


def run(config: config_lib.PipelineConfig) -> Tuple[Optional['run_summary.RunSummary'],
                                                    Optional[BaseException]]:
  """Runs the pipeline; returns the run summary and the error that stopped it, if any.

  Raises:
    ConfigError: a configured input does not exist.
    StoreBusyError: another run is using the metadata store.
  """
  preflight(config)
  with store_lock.hold(config.paths.metadata_path):
    return _run_unlocked(config)


def _run_unlocked(config: config_lib.PipelineConfig):
  # pylint: disable=import-outside-toplevel
  from tfx import v1 as tfx
  from tfx.orchestration.beam import beam_dag_runner
  from ganpipe.pipeline import pipeline as pipeline_lib
  # pylint: enable=import-outside-toplevel
  metadata_path = config.paths.metadata_path
  if _is_local(metadata_path):
    os.makedirs(os.path.dirname(os.path.abspath(metadata_path)), exist_ok=True)
  pipeline = pipeline_lib.create_pipeline(config)
  if config.runner == 'beam':
    runner = beam_dag_runner.BeamDagRunner()
  else:
    runner = tfx.orchestration.LocalDagRunner()
  error = None
  try:
    with beam_staging.no_tfx_package_for_local_runners():
      runner.run(pipeline)
  except Exception as e:  # pylint: disable=broad-except
    error = e  # reported with the summary, which records which component failed
  return summarize(config), error


def summarize(config: config_lib.PipelineConfig) -> Optional['run_summary.RunSummary']:
  """The summary of the latest run of the configured pipeline, or None if it never ran."""
  if not os.path.exists(config.paths.metadata_path):
    return None
  from ganpipe.pipeline import run_summary  # pylint: disable=import-outside-toplevel
  return run_summary.collect(os.path.abspath(config.paths.metadata_path), config.name,
                             list(nodes.NODE_IDS), nodes.EVALUATED_MODELS, nodes.INGESTION_NODE,
                             nodes.DRIFT_NODE, nodes.GATE_NODE, nodes.TRANSFORM_NODE,
                             nodes.DRIFT_BASELINE_NODE)
