"""A request resolved to the signature it names, checked, and how its answer is built.

One class per API: PredictCall, ClassifyCall and RegressCall (and MultiInference's tasks). Each
takes what TF Serving takes and refuses what it refuses, with its status codes; ModelService
runs the signature in between. `service` below is the ModelService the request came to: what
resolves a ModelSpec to a loaded version, and holds the server's limits and options.
"""

from typing import List, Mapping

import grpc
import numpy as np
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2

from ganpipe.serving import errors
from ganpipe.serving import servable as servable_lib

# What each API takes under --enable_signature_method_name_check, and how TF Serving names it.
_METHODS = {
    'prediction': (servable_lib.PREDICT_METHOD, servable_lib.CLASSIFY_METHOD,
                   servable_lib.REGRESS_METHOD),
    'classification': (servable_lib.CLASSIFY_METHOD,),
    'regression': (servable_lib.REGRESS_METHOD,),
}


def _resolve_signature(service, spec: model_pb2.ModelSpec, kind: str):
  """The version and signature a request names, checked as TF Serving checks them for `kind`."""
  loaded = service.resolve(spec)
  try:
    signature = loaded.signature(spec.signature_name)
  except errors.ServingError as e:
    if kind == 'prediction':
      raise
    # TF Serving: Predict says FAILED_PRECONDITION for a missing signature; Classify and
    # Regress say INVALID_ARGUMENT.
    raise errors.invalid_argument(e.message) from None
  methods = _METHODS[kind]
  if service.check_method_names and signature.method_name not in methods:
    expected = methods[0] if len(methods) == 1 else f'one of {{{", ".join(methods)}}}'
    raise errors.invalid_argument(f'Expected {kind} signature method_name to be {expected}. '
                                  f'Was: {signature.method_name} (signature '
                                  f'{signature.name!r}; --enable_signature_method_name_check)')
  return loaded, signature


class PredictCall:
  """A Predict request resolved to its signature and inputs, and how to answer it."""

  def __init__(self, service, request: predict_pb2.PredictRequest):
    self.loaded, self.signature = _resolve_signature(service, request.model_spec, 'prediction')
    self.output_filter = list(request.output_filter) if request.output_filter else []
    for key in self.output_filter:
      if key not in self.signature.outputs:
        raise errors.invalid_argument(
            f'output tensor alias not found in signature {self.signature.name!r}: {key}; '
            f'outputs are {sorted(self.signature.outputs)}')
    if len(set(self.output_filter)) != len(self.output_filter):
      raise errors.invalid_argument(
          f'duplicate output tensor alias in output_filter: {self.output_filter}')
    # Keys and lookups: a protobuf map's items() is collections.abc's, twice the cost.
    tensors = request.inputs
    self.inputs = {key: servable_lib.to_ndarray(tensors[key], key, service.max_input_bytes)
                   for key in tensors}

  def respond(self, outputs: Mapping[str, np.ndarray]) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    fill_spec(response.model_spec, self.loaded, self.signature.name)
    for key in self.output_filter or outputs:
      servable_lib.fill_tensor_proto(response.outputs[key], outputs[key])
    return response


class ExamplesCall:
  """A Classify or Regress request: serialized tf.Examples into a signature's one input."""

  kind = ''

  def __init__(self, service, spec: model_pb2.ModelSpec, request_input):
    self.loaded, self.signature = _resolve_signature(service, spec, self.kind)
    if len(self.signature.inputs) != 1:
      raise errors.invalid_argument(f'Expected one input Tensor. {self._which} has '
                                    f'{len(self.signature.inputs)}')
    self.check_outputs(set(self.signature.outputs))
    self.examples = serialized_examples(request_input)
    (input_key,) = self.signature.inputs
    self.inputs = {input_key: np.array(self.examples, dtype=object)}

  @property
  def _which(self) -> str:
    return f'{self.kind.capitalize()} signature {self.signature.name!r}'

  def check_outputs(self, names) -> None:
    raise NotImplementedError

  def output(self, outputs: Mapping[str, np.ndarray], key: str, float_only: bool) -> np.ndarray:
    """Output `key`, once it is known to have one row per example (TF Serving's checks)."""
    value = outputs[key]
    if value.ndim == 0 or value.shape[0] != len(self.examples):
      raise errors.invalid_argument(
          f'{self._which}: output {key!r} of shape {list(value.shape)} does not have a row for '
          f'each of the {len(self.examples)} examples')
    if float_only and value.dtype != np.float32:
      raise errors.invalid_argument(f'{self._which}: expected output {key!r} of DT_FLOAT. '
                                    f'Got: {value.dtype}')
    if not float_only and value.dtype.kind not in ('O', 'S'):
      raise errors.invalid_argument(f'{self._which}: expected output {key!r} of DT_STRING. '
                                    f'Got: {value.dtype}')
    return value


class ClassifyCall(ExamplesCall):
  """A Classify request resolved to its signature and serialized examples, and its answer."""

  kind = 'classification'

  def check_outputs(self, names) -> None:
    if len(names) not in (1, 2):
      raise errors.invalid_argument(f'Expected one or two output Tensors, found {len(names)}: '
                                    f'{self._which} has {sorted(names)}')
    if not names & {'classes', 'scores'}:
      raise errors.invalid_argument(
          'Expected classification signature outputs to contain at least one of "classes" or '
          f'"scores". {self._which} has {sorted(names)}')

  def respond(self, outputs: Mapping[str, np.ndarray]
              ) -> classification_pb2.ClassificationResponse:
    classes = self.output(outputs, 'classes', False) if 'classes' in outputs else None
    scores = self.output(outputs, 'scores', True) if 'scores' in outputs else None
    for key, value in (('classes', classes), ('scores', scores)):
      if value is not None and value.ndim != 2:
        raise errors.invalid_argument(f'{self._which}: expected output {key!r} of shape '
                                      f'[batch_size, num_classes], got {list(value.shape)}')
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
      raise errors.invalid_argument(f'{self._which}: Tensors class and score should match in '
                                    f'dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}')
    response = classification_pb2.ClassificationResponse()
    fill_spec(response.model_spec, self.loaded, self.signature.name)
    width = (scores if scores is not None else classes).shape[1]
    for i in range(len(self.examples)):
      result = response.result.classifications.add()
      for j in range(width):
        item = result.classes.add()
        if classes is not None:
          item.label = classes[i, j].decode('utf-8', 'replace')
        if scores is not None:
          item.score = float(scores[i, j])
    return response


class RegressCall(ExamplesCall):
  """A Regress request: one float per example, from the signature's output `outputs`."""

  kind = 'regression'

  def check_outputs(self, names) -> None:
    if len(names) != 1:
      raise errors.invalid_argument(f'Expected one output Tensor. {self._which} has '
                                    f'{sorted(names)}')
    if names != {'outputs'}:
      raise errors.invalid_argument(f'No regression outputs found in SignatureDef: '
                                    f'{self._which} has {sorted(names)}, not "outputs"')

  def respond(self, outputs: Mapping[str, np.ndarray]) -> regression_pb2.RegressionResponse:
    values = self.output(outputs, 'outputs', True)
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
      raise errors.invalid_argument(
          f'{self._which}: Expected output Tensor shape to be either [batch_size] or '
          f'[batch_size, 1] but got {list(values.shape)}')
    response = regression_pb2.RegressionResponse()
    fill_spec(response.model_spec, self.loaded, self.signature.name)
    for value in values.reshape(-1):
      response.result.regressions.add().value = float(value)
    return response


def multi_inference_calls(service, request: inference_pb2.MultiInferenceRequest
                           ) -> List[ExamplesCall]:
  """The tasks of a MultiInferenceRequest, checked as TF Serving checks them (multi_inference.cc).

  Every task reads the model version the first task names, and the same input tensor.
  """
  if not request.tasks:
    raise errors.invalid_argument('MultiInferenceRequest has no tasks')
  first = request.tasks[0].model_spec
  calls: List[ExamplesCall] = []
  seen = set()
  for task in request.tasks:
    if not task.model_spec.name:
      raise errors.invalid_argument('Found ModelSpec with an empty model name.')
    if task.model_spec.name != first.name:
      raise errors.invalid_argument('All ModelSpecs in a MultiInferenceRequest must access the '
                                    f'same model name: {first.name!r} and '
                                    f'{task.model_spec.name!r}')
    signature_name = task.model_spec.signature_name or servable_lib.DEFAULT_SIGNATURE
    if signature_name in seen:
      raise errors.invalid_argument(f'Duplicate evaluation of signature: {signature_name}')
    seen.add(signature_name)
    call_type = {servable_lib.CLASSIFY_METHOD: ClassifyCall,
                 servable_lib.REGRESS_METHOD: RegressCall}.get(task.method_name)
    if call_type is None:
      raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                f'Unsupported signature method_name: {task.method_name}')
    spec = model_pb2.ModelSpec()
    spec.CopyFrom(first)
    spec.signature_name = signature_name
    calls.append(call_type(service, spec, request.input))
  tensors = {next(iter(call.signature.signature_def.inputs.values())).name for call in calls}
  if len(tensors) > 1:
    raise errors.invalid_argument(f'Input tensor must be the same for all Signatures; the tasks '
                                  f'feed {sorted(tensors)}')
  return calls


def fill_spec(spec: model_pb2.ModelSpec, loaded: servable_lib.LoadedVersion,
               signature_name: str) -> None:
  spec.name = loaded.model_name
  spec.version.value = loaded.version
  spec.signature_name = signature_name


def serialized_examples(request_input) -> list:
  kind = request_input.WhichOneof('kind')
  if kind == 'example_list':
    examples = list(request_input.example_list.examples)
  elif kind == 'example_list_with_context':
    context = request_input.example_list_with_context.context
    examples = []
    for example in request_input.example_list_with_context.examples:
      merged = type(example)()
      merged.CopyFrom(context)
      merged.MergeFrom(example)
      examples.append(merged)
  else:
    raise errors.invalid_argument('Input is empty: it has neither example_list nor '
                                  'example_list_with_context')
  if not examples:
    raise errors.invalid_argument('Input has no examples')
  return [example.SerializeToString() for example in examples]
