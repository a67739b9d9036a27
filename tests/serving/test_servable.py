"""A loaded version on its own: which folders are versions, its Session's thread settings, and
the tensor conversions."""


import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from ganpipe.serving import config as config_lib
from ganpipe.serving import errors
from ganpipe.serving import manager
from ganpipe.serving import serve_command
from ganpipe.serving import servable
from tests.serving import fixture_models
from tests.serving import flags
from tests.serving.flags import serve_options

VALUES = {
    'float32 scalar': np.float32(1.5).reshape(()),
    'one float32': np.array([2.5], np.float32),
    'float32 rows': np.arange(30, dtype=np.float32).reshape(3, 10) / 7,
    'float64': np.array([0.1, 0.2]),
    'one int64': np.array([7], np.int64),
    'int64 matrix': np.arange(6, dtype=np.int64).reshape(2, 3),
    'int32': np.array([1, -2], np.int32),
    'one uint8': np.array([[255]], np.uint8),
    'uint8 image': np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3),
    'bytes': np.array([b'a', b'\x00bc'], dtype=object),
    'one bytes': np.array([b'x'], dtype=object),
    'unicode objects': np.array(['uni', 'x'], dtype=object),
    'bool': np.array([True, False]),
    'empty float32': np.zeros((0, 3), np.float32),
    'strided view': np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2],
}


# The repeated field Tensor::AsProtoField fills for each dtype (TensorFlow's framework/tensor.cc).
PROTO_FIELDS = {'float32': 'float_val', 'float64': 'double_val', 'int64': 'int64_val',
                'int32': 'int_val', 'uint8': 'int_val', 'object': 'string_val', 'bool': 'bool_val'}


def _parsed_by_tensorflow(proto, value):
  """The tensor TensorFlow's own C++ Tensor::FromProto reads from `proto`."""
  dtype = tf.string if value.dtype == object else tf.as_dtype(value.dtype)
  parsed = tf.io.parse_tensor(proto.SerializeToString(), out_type=dtype).numpy()
  if value.dtype == object:
    value = np.array([v.encode() if isinstance(v, str) else v for v in value.ravel()],
                     dtype=object).reshape(value.shape)
  return parsed, value


@pytest.mark.parametrize('value', list(VALUES.values()), ids=list(VALUES))
def test_response_tensors_hold_their_values_in_the_dtypes_field_as_tf_serving_writes(value):
  # TF Serving's default: Tensor::AsProtoField (servables/tensorflow/predict_util.cc), which
  # clients such as example/mnist_client.py read as `.float_val`.
  proto = tensor_pb2.TensorProto()
  servable.fill_tensor_proto(proto, value)
  assert not proto.tensor_content
  assert [dim.size for dim in proto.tensor_shape.dim] == list(value.shape)
  field = PROTO_FIELDS[value.dtype.name]
  assert len(getattr(proto, field)) == value.size
  parsed, expected = _parsed_by_tensorflow(proto, value)
  np.testing.assert_array_equal(parsed, expected)
  np.testing.assert_array_equal(tf.make_ndarray(proto), tf.make_ndarray(
      tf.make_tensor_proto(value)))


@pytest.mark.parametrize('value', list(VALUES.values()), ids=list(VALUES))
def test_response_tensors_as_tensor_content_as_tf_serving_writes_them_with_the_flag(value):
  # --enable_serialization_as_tensor_content: Tensor::AsProtoTensorContent, strings too.
  proto = tensor_pb2.TensorProto()
  servable.fill_tensor_proto(proto, value, as_tensor_content=True)
  field = PROTO_FIELDS[value.dtype.name]
  assert not getattr(proto, field)
  assert bool(proto.tensor_content) == bool(value.size)
  parsed, expected = _parsed_by_tensorflow(proto, value)
  np.testing.assert_array_equal(parsed, expected)


@pytest.mark.parametrize('value', list(VALUES.values()), ids=list(VALUES))
def test_request_tensors_read_as_make_ndarray_reads_them(value):
  proto = tf.make_tensor_proto(value)
  ours, theirs = servable.to_ndarray(proto, 'x'), tf.make_ndarray(proto)
  assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
  np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize('proto', [
    tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, tensor_content=b'\x00' * 6),
    tf.make_tensor_proto(np.zeros((2, 2), np.float32)),
], ids=['content not a whole number of floats', 'content does not fill the shape'])
def test_a_malformed_request_tensor_is_invalid_argument(proto):
  if proto.tensor_shape.dim:
    proto.tensor_shape.dim[0].size = 3
  with pytest.raises(errors.ServingError, match="input 'x' is not a valid TensorProto") as raised:
    servable.to_ndarray(proto, 'x')
  assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope='module')
def half_plus_two(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('half_plus_two') / '1')
  fixture_models.build_half_plus_two(path, 1)
  return path


@pytest.mark.parametrize('inter_op', [-1, 0, 2])
def test_every_inter_op_setting_gives_the_same_answers(half_plus_two, inter_op):
  options = config_lib.ServerOptions(model_config=config_lib.single_model_config('m', 'unused'),
                                     tensorflow_inter_op_parallelism=inter_op,
                                     tensorflow_intra_op_parallelism=1)
  loaded = servable.LoadedVersion('m', 1, half_plus_two, config_lib.session_config(options))
  x = np.array([[1.0], [3.0]], np.float32)
  outputs = loaded.signature(None)({'x': x})
  np.testing.assert_allclose(outputs['y'], [[fixture_models.half_plus_two_y(1, 1.0)],
                                            [fixture_models.half_plus_two_y(1, 3.0)]])
  np.testing.assert_allclose(outputs['x_squared'], x * x)


def test_session_thread_flags_reach_the_session_config():
  config = config_lib.session_config(serve_options('--tensorflow_inter_op_parallelism', '3',
                                                   '--tensorflow_intra_op_parallelism', '2'))
  assert (config.inter_op_parallelism_threads, config.intra_op_parallelism_threads) == (3, 2)
  default = config_lib.session_config(serve_options())
  # By default a request's ops run on the thread that runs the request.
  assert default.inter_op_parallelism_threads < 0


def test_negative_intra_op_threads_are_refused():
  with pytest.raises(config_lib.ConfigError, match='tensorflow_intra_op_parallelism'):
    config_lib.ServerOptions(model_config=config_lib.single_model_config('m', '/models/m'),
                             tensorflow_intra_op_parallelism=-1)


def test_a_signature_runs_as_a_prepared_callable_not_through_session_run(half_plus_two,
                                                                         monkeypatch):
  loaded = servable.LoadedVersion('m', 1, half_plus_two)
  signature = loaded.signature(None)

  def parse_again(*args, **kwargs):
    raise AssertionError('Session.run parses feeds and fetches on every call')
  monkeypatch.setattr(tf.compat.v1.Session, 'run', parse_again)
  outputs = signature({'x': np.array([[2.0]], np.float32)})
  np.testing.assert_allclose(outputs['y'], [[fixture_models.half_plus_two_y(1, 2.0)]])


def test_a_dtype_the_graph_cannot_take_is_invalid_argument_not_a_crash(half_plus_two):
  # `check_inputs` stops this for requests; the signature itself must still fail cleanly.
  signature = servable.LoadedVersion('m', 1, half_plus_two).signature(None)
  with pytest.raises(errors.ServingError, match='Type mismatch: actual int64 vs. expect float'
                     ) as raised:
    signature({'x': np.array([[2]], np.int64)})
  assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize('value, sent', [
    (np.array([[2.0]], np.float64), 'double'), (np.array([[2]], np.int32), 'int32'),
    (np.array([[True]]), 'bool'), (np.array([[b'2']], dtype=object), 'string'),
    (np.array([[b'2']]), 'string')])  # A bytes_ array, not object: the check's long way.
def test_an_input_of_the_wrong_dtype_is_refused_in_tensorflows_words(half_plus_two, value, sent):
  # The Session's check of its feeds, FunctionCallFrame::SetArgs in TensorFlow, which TF Serving
  # returns as it is.
  signature = servable.LoadedVersion('m', 1, half_plus_two).signature(None)
  signature.check_inputs({'x': np.array([[2.0]], np.float32)})
  with pytest.raises(errors.ServingError) as raised:
    signature.check_inputs({'x': value})
  assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert raised.value.message == f'Expects arg[0] to be float but {sent} is provided'


def test_string_inputs_pass_the_check_as_object_bytes_or_str_arrays(tmp_path):
  path = str(tmp_path / '1')
  with tf.compat.v1.Graph().as_default() as graph:
    text = tf.compat.v1.placeholder(tf.string, shape=[None], name='text')
    length = tf.strings.length(text, name='length')
    with tf.compat.v1.Session(graph=graph) as session:
      builder = tf.compat.v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(session, ['serve'], signature_def_map={
          'serving_default': tf.compat.v1.saved_model.predict_signature_def(
              {'text': text}, {'length': length})})
      builder.save()
  signature = servable.LoadedVersion('m', 1, path).signature(None)
  for value in (np.array([b'ab'], dtype=object), np.array([b'ab']), np.array(['ab'])):
    signature.check_inputs({'text': value})
  with pytest.raises(errors.ServingError, match='Expects arg.0. to be string but float is '
                     'provided'):
    signature.check_inputs({'text': np.array([1.0], np.float32)})


@pytest.mark.parametrize('dtype, value, item_bytes', [
    (tf.float32, 1.0, 4), (tf.uint8, 1, 1), (tf.string, b'a', 8)])
def test_an_input_is_refused_before_decoding_past_the_limit(dtype, value, item_bytes):
  proto = tf.make_tensor_proto([value], dtype=dtype)
  proto.tensor_shape.dim[0].size = 1000  # One value for 1,000 elements.
  limit = 1000 * item_bytes
  assert servable.to_ndarray(proto, 'x', limit).shape == (1000,)
  with pytest.raises(errors.ServingError) as raised:
    servable.to_ndarray(proto, 'x', limit - 1)
  assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert f"input 'x' of shape [1000] would take {limit} bytes decoded" in raised.value.message


def test_only_int64_ascii_version_folders_are_versions(tmp_path):
  # A folder named 10^20 was taken for the latest version; GetModelStatus then failed for the
  # whole model with protobuf's "Value out of range" (REST answered 500).
  for name in ('1', '9223372036854775807', '99999999999999999999', '0', '\u0663', 'tmp'):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'saved_model.pb').write_bytes(b'')
  found = manager._versions_on_disk(str(tmp_path))  # pylint: disable=protected-access
  assert sorted(found) == [1, 2**63 - 1]


def _save_tagged(export_dir: str, tags) -> None:
  """half of x, saved under the MetaGraph tags `tags` only."""
  with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, 1], name='x')
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs={'x': x}, outputs={'y': tf.multiply(x, 0.5, name='y')})
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(session, tags,
                                         signature_def_map={'serving_default': signature})
    builder.save()


def test_the_metagraph_loaded_is_the_one_with_the_saved_model_tags(tmp_path):
  path = str(tmp_path / 'gpu')
  _save_tagged(path, ['serve', 'gpu'])
  with pytest.raises(servable.LoadError, match=r"no MetaGraph tagged \['serve'\] "
                     r"\(--saved_model_tags\); its MetaGraphs are tagged \[\['gpu', 'serve'\]\]"
                     ) as raised:
    servable.LoadedVersion('m', 1, path)
  # NOT_FOUND, as TensorFlow's loader reports a missing tag set (FindMetaGraphDef).
  assert raised.value.code == grpc.StatusCode.NOT_FOUND
  loaded = servable.LoadedVersion('m', 1, path, tags=('gpu', 'serve'))
  x = np.array([[4.0]], np.float32)
  assert loaded.signature(None)({'x': x})['y'].tolist() == [[2.0]]


def test_saved_model_tags_is_a_comma_separated_flag():
  assert serve_options('--saved_model_tags', 'serve,gpu').saved_model_tags == ('serve', 'gpu')
  with pytest.raises(config_lib.ConfigError, match='saved_model_tags must be one or more tags'):
    serve_options('--saved_model_tags', 'serve,')


def test_session_parallelism_sets_both_pools_and_the_gpu_memory_fraction_reaches_the_session():
  config = config_lib.session_config(serve_options('--tensorflow_session_parallelism', '3',
                                                   '--per_process_gpu_memory_fraction', '0.4'))
  assert (config.inter_op_parallelism_threads, config.intra_op_parallelism_threads) == (3, 3)
  assert config.gpu_options.per_process_gpu_memory_fraction == pytest.approx(0.4)


@pytest.mark.parametrize('flags, match', [
    (('--tensorflow_session_parallelism', '2', '--tensorflow_intra_op_parallelism', '2'),
     'not both'),
    (('--per_process_gpu_memory_fraction', '1.5'), 'between 0 and 1'),
])
def test_session_flags_tf_serving_refuses_are_refused(flags, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    serve_options(*flags)


def test_tf_serving_flags_with_nothing_to_tune_here_are_accepted_and_named():
  args = flags.serve_args('--flush_filesystem_caches=true', '--num_load_threads', '4',
                          '--enable_profiler')
  serve_command.options_from_args(args)
  assert serve_command.no_effect_flags_given(args) == [
      f'ignoring --{flag}, accepted as tensorflow_model_server takes it: {reason}'
      for flag, reason in (('flush_filesystem_caches', 'nothing is cached from the file system'),
                           ('enable_profiler', 'there is no profiler service'),
                           ('num_load_threads', 'versions load one at a time'))]
  assert serve_command.no_effect_flags_given(flags.serve_args()) == []
