"""The file format of a ClassMap artifact: class id <-> class name."""

import json
import os
from typing import List

import tensorflow as tf

FILE_NAME = 'class_map.json'


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
