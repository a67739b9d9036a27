"""The ClassMap artifact (class id <-> class name) and its file format."""

import json
import os
from typing import List

import tensorflow as tf
from tfx.types import artifact

FILE_NAME = 'class_map.json'


class ClassMap(artifact.Artifact):
  """Class ids and names of a dataset.

  Layout: `{uri}/class_map.json`, holding `{"classes": [{"id": 0, "name": "..."}, ...]}` with
  ids 0..n-1 in order.
  """
  TYPE_NAME = 'ganpipe.ClassMap'


def write(uri: str, class_names: List[str]) -> None:
  """Writes class names (index = class id) to `{uri}/class_map.json`."""
  tf.io.gfile.makedirs(uri)
  payload = {'classes': [{'id': i, 'name': name} for i, name in enumerate(class_names)]}
  with tf.io.gfile.GFile(os.path.join(uri, FILE_NAME), 'w') as f:
    f.write(json.dumps(payload, indent=2))


def read(uri: str) -> List[str]:
  """Reads the class names from `{uri}/class_map.json`, checking the ids are 0..n-1."""
  with tf.io.gfile.GFile(os.path.join(uri, FILE_NAME)) as f:
    classes = json.load(f)['classes']
  ids = [entry['id'] for entry in classes]
  if ids != list(range(len(classes))):
    raise ValueError(f'{uri}/{FILE_NAME}: class ids must be 0..{len(classes) - 1} in order, '
                     f'got {ids}')
  return [entry['name'] for entry in classes]
