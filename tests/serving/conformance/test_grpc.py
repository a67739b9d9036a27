"""Conformance over gRPC: PredictionService and ModelService, as tensorflow_model_server answers."""

import re
from typing import Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import regression_pb2

from tests.serving import fixture_models as fm
from tests.serving.conformance.protocol import (
    AVAILABLE, CLASSIFY_METHOD, LATEST, PREDICT_METHOD, REGRESS_METHOD, predict_request,
    rpc_error, x)


# --- gRPC Predict -------------------------------------------------------------------------------


def test_predict_without_a_version_uses_the_latest(prediction_stub):
  response = prediction_stub.Predict(predict_request({'x': x([[1.0], [4.0], [-3.5]])}),
                                     timeout=30)
  y = tf.make_ndarray(response.outputs['y'])
  np.testing.assert_array_equal(y, [[fm.half_plus_two_y(LATEST, v)] for v in (1.0, 4.0, -3.5)])
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs['x_squared']),
                                [[1.0], [16.0], [12.25]])
  assert response.model_spec.name == fm.HALF_PLUS_TWO
  assert response.model_spec.version.value == LATEST
  assert response.model_spec.signature_name == fm.PREDICT_SIGNATURE


@pytest.mark.parametrize('version', [1, 2])
def test_predict_by_version(prediction_stub, version):
  response = prediction_stub.Predict(
      predict_request({'x': x([[10.0]])}, version=version, signature=fm.PREDICT_SIGNATURE),
      timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(version, 10.0)]]
  assert response.model_spec.version.value == version


@pytest.mark.parametrize('label, version', [(fm.STABLE_LABEL, 1), (fm.CANARY_LABEL, 2)])
def test_predict_by_label(prediction_stub, label, version):
  response = prediction_stub.Predict(predict_request({'x': x([[6.0]])}, label=label),
                                     timeout=30)
  assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(version, 6.0)]]
  assert response.model_spec.version.value == version


@pytest.mark.parametrize('wanted', [['y'], ['x_squared'], ['y', 'x_squared']])
def test_output_filter_returns_only_the_named_outputs(prediction_stub, wanted):
  response = prediction_stub.Predict(
      predict_request({'x': x([[3.0]])}, version=1, output_filter=wanted), timeout=30)
  assert sorted(response.outputs) == sorted(wanted)
  if 'y' in wanted:
    assert tf.make_ndarray(response.outputs['y']).tolist() == [[fm.half_plus_two_y(1, 3.0)]]


def test_bytes_input_over_grpc(prediction_stub):
  response = prediction_stub.Predict(
      predict_request({'text': x([b'\xff\x00abc', b''], tf.string)}, name=fm.STRING_LENGTH),
      timeout=30)
  assert tf.make_ndarray(response.outputs['length']).tolist() == [5, 0]
  assert tf.make_ndarray(response.outputs['echo_bytes']).tolist() == [b'\xff\x00abc', b'']


# --- gRPC errors --------------------------------------------------------------------------------


@pytest.mark.parametrize('kwargs, inputs, code, pattern', [
    pytest.param({'name': 'no_such_model'}, {'x': [[1.0]]}, grpc.StatusCode.NOT_FOUND,
                 'no_such_model', id='unknown-model'),
    pytest.param({'name': ''}, {'x': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT, '',
                 id='no-model-name'),
    pytest.param({'version': 99}, {'x': [[1.0]]}, grpc.StatusCode.NOT_FOUND, '99',
                 id='unknown-version'),
    # TF Serving: ServerCore::GetModelVersionForLabel returns InvalidArgument, not NotFound.
    pytest.param({'label': 'no_such_label'}, {'x': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 'no_such_label', id='unknown-label'),
    # TF Serving: "Serving signature key "..." not found." is a FailedPrecondition.
    pytest.param({'signature': 'no_such_signature'}, {'x': [[1.0]]},
                 grpc.StatusCode.FAILED_PRECONDITION, 'no_such_signature', id='unknown-signature'),
    # TensorFlow's tensorflow/cc/saved_model/util.cc GetInputValues, which TF Serving 2.16's
    # predict_util.cc calls once the input count matches the signature's.
    pytest.param({}, {'not_an_input': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 r'^Signature input alias: x\(feed name: [^)]+\) not found in request and no '
                 r'default value provided\. Inputs expected to be in the request \{not_an_input\}',
                 id='wrong-input-name'),
    pytest.param({}, {}, grpc.StatusCode.INVALID_ARGUMENT, r'\bx\b', id='missing-input'),
    pytest.param({}, {'x': [[1.0]], 'surplus': [[1.0]]}, grpc.StatusCode.INVALID_ARGUMENT,
                 'surplus', id='extra-input'),
    pytest.param({'output_filter': ['no_such_output']}, {'x': [[1.0]]},
                 grpc.StatusCode.INVALID_ARGUMENT, 'no_such_output', id='unknown-output-filter'),
    # TF Serving (predict_util.cc): "duplicate output tensor alias".
    pytest.param({'output_filter': ['y', 'y']}, {'x': [[1.0]]},
                 grpc.StatusCode.INVALID_ARGUMENT, 'duplicate output tensor alias',
                 id='duplicate-output-filter'),
])
def test_predict_errors(prediction_stub, kwargs, inputs, code, pattern):
  request = predict_request({k: x(v) for k, v in inputs.items()}, **kwargs)
  error = rpc_error(prediction_stub.Predict, request)
  assert error.code() == code, error.details()
  assert re.search(pattern, error.details()), error.details()


@pytest.mark.parametrize('tensor, words', [
    pytest.param(x([[1]], tf.int64), ['float', 'int64'], id='int64-for-float'),
    pytest.param(x([[b'1']], tf.string), ['float', 'string'], id='string-for-float'),
])
def test_wrong_dtype_is_invalid_argument_naming_both_types(prediction_stub, tensor, words):
  error = rpc_error(prediction_stub.Predict, predict_request({'x': tensor}))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  for word in words:
    assert word in error.details().lower(), error.details()


# TF Serving checks no input shapes (predict_util.cc): the graph's ops decide. A shape the ops
# cannot take is INVALID_ARGUMENT from the session; one they can take runs. Which MatMul kernel
# refuses a vector depends on the CPU: oneDNN's (tensorflow/core/kernels/mkl/mkl_matmul_op.cc,
# on by default where the CPU has AVX-512 VNNI or AMX) says "In[0] ndims must be >= 2", Eigen's
# (tensorflow/core/kernels/matmul_op_impl.h) "In[0] and In[1] has different ndims".
@pytest.mark.parametrize('values, pattern', [
    pytest.param([[1.0, 2.0, 3.0]], r'Matrix size-incompatible', id='three-columns'),
    pytest.param([1.0, 2.0], r'In\[0\] ndims must be >= 2|In\[0\] and In\[1\] has different ndims',
                 id='rank-1'),
])
def test_a_shape_the_ops_cannot_take_is_invalid_argument_from_the_graph(prediction_stub, values,
                                                                         pattern):
  # y is a [1, 1] matmul of x: TensorFlow's MatMul kernel refuses both.
  error = rpc_error(prediction_stub.Predict, predict_request({'x': x(values)}))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert re.search(pattern, error.details()), error.details()


def test_a_shape_the_signature_does_not_declare_runs_if_the_ops_take_it(prediction_stub):
  # x is declared [-1, 1]; x_squared is elementwise, and the output filter fetches only it.
  response = prediction_stub.Predict(
      predict_request({'x': x([1.0, 2.0])}, version=1, output_filter=['x_squared']), timeout=30)
  assert tf.make_ndarray(response.outputs['x_squared']).tolist() == [1.0, 4.0]


# --- Classify -----------------------------------------------------------------------------------


def _classification_request(xs, signature: str,
                            request_type=classification_pb2.ClassificationRequest):
  request = request_type()
  request.model_spec.name = fm.HALF_PLUS_TWO
  request.model_spec.signature_name = signature
  for value in xs:
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.append(value)
  return request


def test_classify_on_the_classify_signature(prediction_stub):
  response = prediction_stub.Classify(
      _classification_request([1.0, 4.0], fm.CLASSIFY_SIGNATURE), timeout=30)
  scores = [[c.score for c in result.classes] for result in response.result.classifications]
  assert scores == [[fm.half_plus_two_y(LATEST, 1.0)], [fm.half_plus_two_y(LATEST, 4.0)]]
  # The signature has scores but no classes, so TF Serving leaves the labels empty.
  assert [c.label for r in response.result.classifications for c in r.classes] == ['', '']
  assert response.model_spec.version.value == LATEST


# PreProcessClassification (servables/tensorflow/classifier.cc) checks the input is keyed
# `inputs` first, then that an output is `classes` or `scores`; both messages quote the signature.
def test_classify_on_a_signature_whose_input_is_not_named_inputs_is_invalid_argument(
    prediction_stub):
  # serving_default has one input, named x.
  error = rpc_error(prediction_stub.Classify,
                    _classification_request([1.0], fm.PREDICT_SIGNATURE))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert error.details().startswith('No classification inputs found in SignatureDef: inputs {\n'
                                    '  key: "x"\n'), error.details()


def test_classify_on_a_signature_without_classes_or_scores_is_invalid_argument(prediction_stub):
  # The regression signature reads `inputs`, but its one output is `outputs`.
  error = rpc_error(prediction_stub.Classify,
                    _classification_request([1.0], fm.REGRESS_SIGNATURE))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert error.details().startswith(
      'Expected classification signature outputs to contain at least one of "classes" or '
      '"scores". Signature was: inputs {\n'), error.details()


def test_classify_on_a_tf2_classifier_whose_method_name_is_predict(prediction_stub):
  # TF Serving's --enable_signature_method_name_check is off by default: a signature of the
  # right shape classifies, whatever its method_name, as TF2 SavedModels need.
  response = prediction_stub.Classify(
      _classification_request([2.0], fm.PREDICT_METHOD_CLASSIFY_SIGNATURE), timeout=30)
  assert [[c.score for c in r.classes] for r in response.result.classifications] == [
      [fm.half_plus_two_y(LATEST, 2.0)]]


@pytest.mark.parametrize('signature', [fm.CLASSIFY_SIGNATURE, fm.REGRESS_SIGNATURE])
def test_predict_on_a_classify_or_regress_signature_feeds_it_directly(prediction_stub, signature):
  example = _classification_request([3.0], signature).input.example_list.examples[0]
  response = prediction_stub.Predict(
      predict_request({'inputs': x([example.SerializeToString()], tf.string)},
                      signature=signature), timeout=30)
  (output,) = response.outputs.values()
  assert tf.make_ndarray(output).tolist() == [[fm.half_plus_two_y(LATEST, 3.0)]]


# --- Regress ------------------------------------------------------------------------------------


def test_regress_on_the_regress_signature(prediction_stub):
  response = prediction_stub.Regress(
      _classification_request([1.0, -2.0], fm.REGRESS_SIGNATURE,
                              regression_pb2.RegressionRequest), timeout=30)
  assert [r.value for r in response.result.regressions] == [
      fm.half_plus_two_y(LATEST, 1.0), fm.half_plus_two_y(LATEST, -2.0)]
  assert response.model_spec.name == fm.HALF_PLUS_TWO
  assert response.model_spec.version.value == LATEST


@pytest.mark.parametrize('signature, pattern', [
    # serving_default has two outputs; a regression has one, named "outputs".
    pytest.param(fm.PREDICT_SIGNATURE, 'Expected one output Tensor', id='two-outputs'),
    pytest.param(fm.CLASSIFY_SIGNATURE, 'No regression outputs found', id='no-outputs-key'),
    # TF Serving: Classify and Regress name a missing signature INVALID_ARGUMENT.
    pytest.param('no_such_signature', 'no_such_signature', id='unknown-signature'),
])
def test_regress_errors(prediction_stub, signature, pattern):
  error = rpc_error(prediction_stub.Regress, _classification_request(
      [1.0], signature, regression_pb2.RegressionRequest))
  assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
  assert re.search(pattern, error.details()), error.details()


# --- MultiInference -----------------------------------------------------------------------------


def _multi_inference_request(tasks, xs=(1.0, 4.0)) -> inference_pb2.MultiInferenceRequest:
  request = inference_pb2.MultiInferenceRequest()
  for name, signature, method in tasks:
    task = request.tasks.add(method_name=method)
    task.model_spec.name = name
    task.model_spec.signature_name = signature
  for value in xs:
    request.input.example_list.examples.add().features.feature['x'].float_list.value.append(value)
  return request


def test_multi_inference_classifies_and_regresses_the_same_examples(prediction_stub):
  response = prediction_stub.MultiInference(_multi_inference_request([
      (fm.HALF_PLUS_TWO, fm.CLASSIFY_SIGNATURE, CLASSIFY_METHOD),
      (fm.HALF_PLUS_TWO, fm.REGRESS_SIGNATURE, REGRESS_METHOD)]), timeout=30)
  expected = [fm.half_plus_two_y(LATEST, 1.0), fm.half_plus_two_y(LATEST, 4.0)]
  classified, regressed = response.results
  assert [[c.score for c in r.classes]
          for r in classified.classification_result.classifications] == [[v] for v in expected]
  assert [r.value for r in regressed.regression_result.regressions] == expected
  assert [r.model_spec.signature_name for r in response.results] == [fm.CLASSIFY_SIGNATURE,
                                                                     fm.REGRESS_SIGNATURE]
  assert {r.model_spec.version.value for r in response.results} == {LATEST}


@pytest.mark.parametrize('tasks, code, pattern', [
    pytest.param([(fm.HALF_PLUS_TWO, fm.CLASSIFY_SIGNATURE, CLASSIFY_METHOD),
                   (fm.STRING_LENGTH, fm.PREDICT_SIGNATURE, CLASSIFY_METHOD)],
                  grpc.StatusCode.INVALID_ARGUMENT, 'same model name', id='two-models'),
    pytest.param([(fm.HALF_PLUS_TWO, fm.REGRESS_SIGNATURE, REGRESS_METHOD)] * 2,
                 grpc.StatusCode.INVALID_ARGUMENT, 'Duplicate evaluation of signature',
                 id='same-signature-twice'),
    pytest.param([(fm.HALF_PLUS_TWO, fm.PREDICT_SIGNATURE, PREDICT_METHOD)],
                 grpc.StatusCode.UNIMPLEMENTED, 'Unsupported signature method_name',
                 id='predict-task'),
    pytest.param([('', fm.CLASSIFY_SIGNATURE, CLASSIFY_METHOD)],
                 grpc.StatusCode.INVALID_ARGUMENT, 'empty model name', id='no-model-name'),
])
def test_multi_inference_errors(prediction_stub, tasks, code, pattern):
  error = rpc_error(prediction_stub.MultiInference, _multi_inference_request(tasks))
  assert error.code() == code, error.details()
  assert re.search(pattern, error.details()), error.details()


# --- Metadata and status ------------------------------------------------------------------------


def _metadata(prediction_stub, version: Optional[int] = None):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
  request.model_spec.name = fm.HALF_PLUS_TWO
  if version is not None:
    request.model_spec.version.value = version
  response = prediction_stub.GetModelMetadata(request, timeout=30)
  signatures = get_model_metadata_pb2.SignatureDefMap()
  assert response.metadata['signature_def'].Unpack(signatures)
  return response, signatures.signature_def


def _dims(tensor_info):
  return [d.size for d in tensor_info.tensor_shape.dim]


@pytest.mark.parametrize('version', [None, 1])
def test_metadata_describes_both_signatures(prediction_stub, version):
  response, signatures = _metadata(prediction_stub, version)
  assert response.model_spec.name == fm.HALF_PLUS_TWO
  assert response.model_spec.version.value == (version or LATEST)
  predict = signatures[fm.PREDICT_SIGNATURE]
  assert predict.method_name == PREDICT_METHOD
  assert sorted(predict.inputs) == ['x'] and sorted(predict.outputs) == ['x_squared', 'y']
  assert predict.inputs['x'].dtype == tf.float32.as_datatype_enum
  assert _dims(predict.inputs['x']) == [-1, 1]
  assert predict.outputs['y'].dtype == tf.float32.as_datatype_enum
  classify = signatures[fm.CLASSIFY_SIGNATURE]
  assert classify.method_name == CLASSIFY_METHOD
  assert sorted(classify.inputs) == ['inputs'] and sorted(classify.outputs) == ['scores']
  assert classify.inputs['inputs'].dtype == tf.string.as_datatype_enum
  regress = signatures[fm.REGRESS_SIGNATURE]
  assert regress.method_name == REGRESS_METHOD
  assert sorted(regress.inputs) == ['inputs'] and sorted(regress.outputs) == ['outputs']


@pytest.mark.parametrize('name, fields, code', [
    pytest.param('no_such_model', ['signature_def'], grpc.StatusCode.NOT_FOUND, id='unknown-model'),
    pytest.param(fm.HALF_PLUS_TWO, [], grpc.StatusCode.INVALID_ARGUMENT, id='no-field'),
    pytest.param(fm.HALF_PLUS_TWO, ['no_such_field'], grpc.StatusCode.INVALID_ARGUMENT,
                 id='unknown-field'),
])
def test_metadata_errors(prediction_stub, name, fields, code):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
  request.model_spec.name = name
  error = rpc_error(prediction_stub.GetModelMetadata, request)
  assert error.code() == code, error.details()


def _status(model_stub, name: str, version: Optional[int] = None):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  return model_stub.GetModelStatus(request, timeout=30)


def test_model_status_lists_every_version_available(model_stub):
  response = _status(model_stub, fm.HALF_PLUS_TWO)
  states = {s.version: (s.state, s.status.error_code) for s in response.model_version_status}
  assert states == {1: (AVAILABLE, 0), 2: (AVAILABLE, 0)}


def test_model_status_of_one_version(model_stub):
  response = _status(model_stub, fm.HALF_PLUS_TWO, version=1)
  assert [(s.version, s.state) for s in response.model_version_status] == [(1, AVAILABLE)]


# GetModelStatusWithModelSpec (model_servers/get_model_status_impl.cc): an empty name is just a
# model with no versions.
@pytest.mark.parametrize('name, version, message', [
    ('no_such_model', None, 'Could not find any versions of model no_such_model'),
    ('', None, 'Could not find any versions of model '),
    (fm.HALF_PLUS_TWO, 99, 'Could not find version 99 of model half_plus_two'),
], ids=['unknown-model', 'empty-name', 'unknown-version'])
def test_model_status_not_found(model_stub, name, version, message):
  with pytest.raises(grpc.RpcError) as raised:
    _status(model_stub, name, version)
  assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.details()
  assert raised.value.details() == message
