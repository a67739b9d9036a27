"""GeneratorEvaluator's executor: unpacks artifacts, evaluates, writes metrics and a blessing."""

import json
import os
from typing import Any, Dict, List

from PIL import Image
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from ganpipe.components import artifacts
from ganpipe.models.gan import grid as grid_lib
from ganpipe.components.generator_evaluator import evaluation
from ganpipe.components.generator_evaluator import metrics

MODEL_KEY = 'model'
CLASSIFIER_KEY = 'classifier'
EXAMPLES_KEY = 'examples'
BASELINE_MODEL_KEY = 'baseline_model'
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
NUM_SAMPLES_KEY = 'num_samples'
MAX_DISTANCE_RATIO_KEY = 'max_distance_ratio'
MIN_SCORE_RATIO_KEY = 'min_score_ratio'
MAX_DISTANCE_INCREASE_KEY = 'max_distance_increase'
SEED_KEY = 'seed'
METRICS_FILE = 'metrics.json'
SAMPLES_FILE = 'samples.png'


class Executor(base_executor.BaseExecutor):
  """Writes `{evaluation}/metrics.json`, `{evaluation}/samples.png` and the blessing."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    classifier = artifact_utils.get_single_instance(input_dict[CLASSIFIER_KEY])
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    baselines = input_dict.get(BASELINE_MODEL_KEY) or []
    baseline = baselines[0] if baselines else None
    count = int(exec_properties[NUM_SAMPLES_KEY])
    seed = int(exec_properties[SEED_KEY])

    real_train, real_eval = evaluation.real_samples(examples.uri, count, seed)
    result = evaluation.evaluate(
        path_utils.serving_model_path(model.uri), path_utils.serving_model_path(classifier.uri),
        real_train, real_eval, seed,
        path_utils.serving_model_path(baseline.uri) if baseline else None)
    verdict = metrics.judge(
        result['frechet_classifier_distance'], result['classifier_score'],
        result['real_frechet_classifier_distance'], result['real_classifier_score'],
        result.get('baseline_frechet_classifier_distance'),
        float(exec_properties[MAX_DISTANCE_RATIO_KEY]), float(exec_properties[MIN_SCORE_RATIO_KEY]),
        float(exec_properties[MAX_DISTANCE_INCREASE_KEY]), result['distance_meaningful'])
    result.update(blessed=verdict.blessed, reasons=verdict.reasons)

    evaluation_uri = artifact_utils.get_single_uri(output_dict[EVALUATION_KEY])
    tf.io.gfile.makedirs(evaluation_uri)
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, METRICS_FILE), 'w') as f:
      json.dump(result, f, indent=2)
    samples = evaluation.generate(path_utils.serving_model_path(model.uri), 64, seed)
    grid = grid_lib.make_grid(samples)
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, SAMPLES_FILE), 'wb') as f:
      Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(f, 'PNG')

    blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     int(verdict.blessed))
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline:
      blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          baseline.uri)
      blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                       baseline.id)
    blessing.set_string_custom_property(artifacts.REASON_PROPERTY,
                                        '; '.join(verdict.reasons))
    name = constants.BLESSED_FILE_NAME if verdict.blessed else constants.NOT_BLESSED_FILE_NAME
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, name), 'w') as f:
      f.write('; '.join(verdict.reasons))
