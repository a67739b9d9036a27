"""A request resolved to the signature it names, checked, and how its answer is built.

One class per API: PredictCall, ClassifyCall and RegressCall (and MultiInference's tasks). Each
takes what TF Serving takes and refuses what it refuses, with its status codes; ModelService
runs the signature in between. `service` below is the ModelService the request came to: what
resolves a ModelSpec to a loaded version, and holds the server's limits and options.
"""

from typing import List, Mapping

from google.protobuf import text_format
import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
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
  except errors.ServingError:
    if kind == 'prediction':
      raise
    # GetClassificationSignatureDef, GetRegressionSignatureDef (servables/tensorflow/util.cc).
    raise errors.invalid_argument('No signature was found with the name: '
                                  f'{spec.signature_name or servable_lib.DEFAULT_SIGNATURE}'
                                  ) from None
  methods = _METHODS[kind]
  if service.check_method_names and signature.method_name not in methods:
    expected = methods[0] if len(methods) == 1 else f'one of {{{", ".join(methods)}}}'
    code = grpc.StatusCode.INTERNAL if kind == 'prediction' else grpc.StatusCode.INVALID_ARGUMENT
    raise errors.ServingError(code, f'Expected {kind} signature method_name to be {expected}. '
                                    f'Was: {signature.method_name}')
  return loaded, signature


def _check_model_spec(request) -> None:
  if not request.HasField('model_spec'):
    raise errors.invalid_argument('Missing ModelSpec')


class PredictCall:
  """A Predict request resolved to its signature and inputs, and how to answer it."""

  def __init__(self, service, request: predict_pb2.PredictRequest):
    _check_model_spec(request)
    self.loaded, self.signature = _resolve_signature(service, request.model_spec, 'prediction')
    # Keys and lookups: a protobuf map's items() is collections.abc's, twice the cost.
    tensors = request.inputs
    self.inputs = {key: servable_lib.to_ndarray(tensors[key], key, service.max_input_bytes)
                   for key in tensors}
    # As RunPredict: the inputs are checked before the output filter.
    self.signature.check_inputs(self.inputs)
    self.output_filter = list(request.output_filter) if request.output_filter else []
    seen = set()
    for key in self.output_filter:
      if key not in self.signature.outputs:
        raise errors.invalid_argument(
            f'output tensor alias not found in signature: {key} Outputs expected to be in the '
            f'set {{{",".join(sorted(self.signature.outputs))}}}.')
      if key in seen:
        raise errors.invalid_argument(f'duplicate output tensor alias: {key}')
      seen.add(key)
    if self.output_filter:
      self.signature = self.signature.fetching(self.output_filter)
    self.as_tensor_content = service.serialize_as_tensor_content

  def respond(self, outputs: Mapping[str, np.ndarray]) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    fill_spec(response.model_spec, self.loaded, self.signature.name)
    for key in self.output_filter or outputs:
      servable_lib.fill_tensor_proto(response.outputs[key], outputs[key], self.as_tensor_content)
    return response


def _debug_string(signature: servable_lib.Signature) -> str:
  """The SignatureDef as protobuf's DebugString (its text format), as TF Serving quotes it."""
  return text_format.MessageToString(signature.signature_def)


class ExamplesCall:
  """A Classify or Regress request: serialized tf.Examples into the signature's `inputs`.

  Checked as PreProcessClassification and PreProcessRegression check it, and answered as their
  PostProcess functions answer it (servables/tensorflow/classifier.cc, regressor.cc).
  """

  kind = ''
  noun = ''  # `classification` or `regression`, as TF Serving's messages say

  def __init__(self, service, spec: model_pb2.ModelSpec, request_input):
    self.loaded, self.signature = _resolve_signature(service, spec, self.kind)
    if len(self.signature.inputs) != 1:
      raise errors.invalid_argument('Expected one input Tensor.')
    self.check_output_count(len(self.signature.outputs))
    if 'inputs' not in self.signature.inputs:
      raise errors.invalid_argument(f'No {self.noun} inputs found in SignatureDef: '
                                    f'{_debug_string(self.signature)}')
    self.check_outputs(set(self.signature.outputs))
    self.examples = serialized_examples(request_input)
    self.inputs = {'inputs': np.array(self.examples, dtype=object)}
    self.signature.check_inputs(self.inputs)

  def check_output_count(self, count: int) -> None:
    raise NotImplementedError

  def check_outputs(self, names) -> None:
    raise NotImplementedError


class ClassifyCall(ExamplesCall):
  """A Classify request resolved to its signature and serialized examples, and its answer."""

  kind = 'classification'
  noun = 'classification'

  def check_output_count(self, count: int) -> None:
    if count not in (1, 2):
      raise errors.invalid_argument(f'Expected one or two output Tensors, found {count}')

  def check_outputs(self, names) -> None:
    if not names & {'classes', 'scores'}:
      raise errors.invalid_argument(
          'Expected classification signature outputs to contain at least one of "classes" or '
          f'"scores". Signature was: {_debug_string(self.signature)}')

  def _output(self, outputs: Mapping[str, np.ndarray], key: str, dtype_name: str,
              float_only: bool) -> np.ndarray:
    value = outputs[key]
    if value.ndim != 2:
      raise errors.invalid_argument(f'Expected Tensor shape: [batch_size num_classes] but got '
                                    f'{_shape_string(value)}')
    if (value.dtype != np.float32) if float_only else (value.dtype.kind not in ('O', 'S')):
      raise errors.invalid_argument(f'Expected {key} Tensor of {dtype_name}. Got: '
                                    f'{_dtype_name(value)}')
    if value.shape[0] != len(self.examples):
      raise errors.invalid_argument(f'Expected {key} output batch size of '
                                    f'{len(self.examples)}. Got: {value.shape[0]}')
    return value

  def respond(self, outputs: Mapping[str, np.ndarray]
              ) -> classification_pb2.ClassificationResponse:
    classes = self._output(outputs, 'classes', 'DT_STRING', False) if 'classes' in outputs \
        else None
    scores = self._output(outputs, 'scores', 'DT_FLOAT', True) if 'scores' in outputs else None
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
      raise errors.invalid_argument(f'Tensors class and score should match in dim_size(1). Got '
                                    f'{classes.shape[1]} vs. {scores.shape[1]}')
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
  noun = 'regression'

  def check_output_count(self, count: int) -> None:
    if count != 1:
      raise errors.invalid_argument('Expected one output Tensor.')

  def check_outputs(self, names) -> None:
    if names != {'outputs'}:
      raise errors.invalid_argument(f'No regression outputs found in SignatureDef: '
                                    f'{_debug_string(self.signature)}')

  def respond(self, outputs: Mapping[str, np.ndarray]) -> regression_pb2.RegressionResponse:
    values = outputs['outputs']
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
      raise errors.invalid_argument('Expected output Tensor shape to be either [batch_size] or '
                                    f'[batch_size, 1] but got {_shape_string(values)}')
    if values.shape[0] != len(self.examples):
      raise errors.invalid_argument(f'Input batch size did not match output batch size: '
                                    f'{len(self.examples)} vs. {values.shape[0]}')
    if values.dtype != np.float32:
      raise errors.invalid_argument(f'Expected output Tensor of DT_FLOAT.  Got: '
                                    f'{_dtype_name(values)}')
    response = regression_pb2.RegressionResponse()
    fill_spec(response.model_spec, self.loaded, self.signature.name)
    for value in values.reshape(-1):
      response.result.regressions.add().value = float(value)
    return response


def _shape_string(value: np.ndarray) -> str:
  """TensorShape::DebugString: `[2,3]`."""
  return '[' + ','.join(str(size) for size in value.shape) + ']'


def _dtype_name(value: np.ndarray) -> str:
  """DataType_Name: `DT_INT64`."""
  return 'DT_STRING' if value.dtype.kind in ('O', 'S', 'U') else types_pb2.DataType.Name(
      tf.dtypes.as_dtype(value.dtype).as_datatype_enum)


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
  """The serialized examples of an Input, as InputToSerializedExampleTensor builds them
  (servables/tensorflow/util.cc): the context's bytes, then each example's, merged as protobuf
  parses them."""
  kind = request_input.WhichOneof('kind')
  if kind == 'example_list':
    examples = [example.SerializeToString()
                for example in request_input.example_list.examples]
  elif kind == 'example_list_with_context':
    with_context = request_input.example_list_with_context
    context = with_context.context.SerializeToString()
    examples = [context + example.SerializeToString() for example in with_context.examples]
  else:
    examples = []
  if not examples:
    raise errors.invalid_argument('Input is empty.')
  return examples
