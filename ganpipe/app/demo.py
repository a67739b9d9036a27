"""After a run: serve the pushed models, query them over gRPC, and shut the server down."""

import dataclasses
import glob
import os
from typing import List, Optional, Sequence, TextIO

from ganpipe.app import grids
from ganpipe.models import features
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import nodes

SERVED_MODELS = (nodes.CLASSIFIER, nodes.GENERATOR)


@dataclasses.dataclass(frozen=True)
class EvalImage:
  source: str
  label_name: str
  png: bytes


def pushed_models(serving_root: str) -> List[str]:
  """The models with at least one numeric version folder under `serving_root`."""
  return [name for name in SERVED_MODELS
          if any(entry.isdigit() for entry in _listdir(os.path.join(serving_root, name)))]


def eval_images(pipeline_root: str, count: int) -> List[EvalImage]:
  """The first `count` images of the newest ingested eval split."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  runs = glob.glob(os.path.join(pipeline_root, nodes.INGESTION_NODE, 'examples', '*',
                                'Split-eval'))
  if not runs:
    return []
  newest = max(runs, key=lambda path: int(path.split(os.sep)[-2]))
  files = sorted(glob.glob(os.path.join(newest, '*')))
  images = []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP').take(count):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    images.append(EvalImage(
        source=feature[features.SOURCE_KEY].bytes_list.value[0].decode(),
        label_name=feature[features.LABEL_NAME_KEY].bytes_list.value[0].decode(),
        png=feature[features.IMAGE_KEY].bytes_list.value[0]))
  return images


def run(config: config_lib.PipelineConfig, out: TextIO, num_images: int = 8,
        grid_path: Optional[str] = None, grid_scale: int = grids.AUTO) -> int:
  """Starts the model server on the pushed models, classifies eval images, generates a grid.

  The grid's images are scaled up `grid_scale` times (grids.AUTO: to a readable size).

  Returns:
    0 when every query succeeded, 1 otherwise (the reason is printed).
  """
  # pylint: disable=import-outside-toplevel
  from ganpipe.app import queries
  from ganpipe.serving import client as client_lib
  from ganpipe.serving import config as serving_config
  from ganpipe.serving import server as server_lib
  # pylint: enable=import-outside-toplevel
  root = config.paths.serving_root
  models = pushed_models(root)
  if not models:
    out.write(f'No model was pushed under {root}; nothing to serve.\n')
    return 1
  model_config = serving_config.single_model_config(models[0], os.path.join(root, models[0]))
  for name in models[1:]:
    model_config.model_config_list.config.add(name=name,
                                              base_path=os.path.abspath(os.path.join(root, name)),
                                              model_platform='tensorflow')
  server = server_lib.ModelServer(serving_config.ServerOptions(
      model_config=model_config, port=0, file_system_poll_wait_seconds=0)).start()
  target = f'127.0.0.1:{server.port}'
  out.write(f'\nServing {", ".join(models)} from {root} on gRPC {target}\n')
  try:
    with client_lib.ServingClient(target) as client:
      for name in models:
        for status in client.model_status(name):
          out.write(f'  {name} version {status["version"]}: {status["state"]}\n')
      if nodes.CLASSIFIER in models:
        images = eval_images(config.paths.pipeline_root, num_images)
        predictions = queries.classify_images(client, nodes.CLASSIFIER,
                                              [image.png for image in images])
        right = 0
        out.write(f'Classify over gRPC ({len(images)} eval images):\n')
        for image, prediction in zip(images, predictions):
          right += prediction.class_name == image.label_name
          mark = 'ok' if prediction.class_name == image.label_name else 'WRONG'
          out.write(f'  {image.source:<24} true {image.label_name:<12} -> '
                    f'{prediction.class_name:<12} p={prediction.probability:.3f}  {mark}\n')
        out.write(f'  {right}/{len(images)} right\n')
      if nodes.GENERATOR in models:
        generated = queries.generate(client, nodes.GENERATOR, num_images=16, seed=7)
        path = grid_path or os.path.join(os.path.dirname(root.rstrip('/')) or '.',
                                         'generated_grid.png')
        height, width = generated.images.shape[1:3]
        scale = grids.scale_for(height, width, grid_scale)
        _write_png(path, grids.make_grid(generated.images, scale=scale))
        out.write(f'Generate over gRPC: 16 images {generated.images.shape[1:]}, scaled {scale}x '
                  f'-> {path}\n')
  except client_lib.ServingError as e:
    out.write(f'Query failed: {e}\n')
    return 1
  finally:
    server.stop(grace=5)
    out.write('Server stopped.\n')
  return 0


def _write_png(path: str, pixels) -> None:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tf.io.write_file(path, tf.io.encode_png(pixels))


def _listdir(path: str) -> Sequence[str]:
  try:
    return os.listdir(path)
  except FileNotFoundError:
    return []
