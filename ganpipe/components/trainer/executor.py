"""The Trainer executor: TFX's generic executor, with the class map unpacked into FnArgs."""

from tfx.components.trainer import executor as trainer_executor
from tfx.types import artifact_utils

from ganpipe.components import class_map

CLASS_MAP_KEY = 'class_map'
CLASS_NAMES = 'class_names'
EPOCHS_KEY = 'epochs'
MODEL_SECTION_KEY = 'model_section'


class Executor(trainer_executor.GenericExecutor):
  """Adds `class_names` to `FnArgs.custom_config` when a class map is an input, and applies
  the `epochs` parameter to the model's section of the custom config."""

  def _GetFnArgs(self, input_dict, output_dict, exec_properties):
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    epochs = exec_properties.get(EPOCHS_KEY)
    if epochs is not None:
      if int(epochs) < 1:
        raise ValueError(f'epochs must be 1 or more, got {epochs}')
      fn_args.custom_config = dict(fn_args.custom_config or {})
      section = fn_args.custom_config[MODEL_SECTION_KEY]
      fn_args.custom_config[section] = {**fn_args.custom_config[section], 'epochs': int(epochs)}
    if input_dict.get(CLASS_MAP_KEY):
      fn_args.custom_config = dict(fn_args.custom_config or {})
      fn_args.custom_config[CLASS_NAMES] = class_map.read(
          artifact_utils.get_single_uri(input_dict[CLASS_MAP_KEY]))
    return fn_args
