"""TF Serving config protos that tensorflow-serving-api does not ship, declared from their fields.

The server reads them as text protos, as tensorflow_model_server does, so a typo'd field name or
a value of the wrong type is a parse error naming the line, not a setting silently dropped. Only
the text format is used; field numbers follow the order given.
"""

from typing import Dict, Sequence, Tuple

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import wrappers_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT64 = _FIELD.TYPE_STRING, _FIELD.TYPE_BOOL, _FIELD.TYPE_INT64
# A field's type: a scalar type above, or the full name of a message ('.package.Message').
INT64_VALUE, STRING_VALUE, BOOL_VALUE = ('.google.protobuf.Int64Value',
                                         '.google.protobuf.StringValue',
                                         '.google.protobuf.BoolValue')
REPEATED = 'repeated'

Field = Tuple  # (name, type) or (name, type, REPEATED)


def message_classes(file_name: str, messages: Dict[str, Sequence[Field]],
                    package: str = 'tensorflow.serving') -> Dict[str, type]:
  """Declares `messages` (name -> fields) in `file_name` and returns their classes by name.

  The messages live in a pool of their own, so they never clash with a real import of the same
  proto.
  """
  pool = descriptor_pool.DescriptorPool()
  wrappers = descriptor_pb2.FileDescriptorProto()
  wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
  pool.Add(wrappers)
  file_proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package,
                                                  syntax='proto3',
                                                  dependency=[wrappers.name])
  for message_name, fields in messages.items():
    message = file_proto.message_type.add(name=message_name)
    for number, (name, kind, *repeated) in enumerate(fields, start=1):
      label = _FIELD.LABEL_REPEATED if repeated == [REPEATED] else _FIELD.LABEL_OPTIONAL
      if isinstance(kind, str):
        message.field.add(name=name, number=number, type=_FIELD.TYPE_MESSAGE, type_name=kind,
                          label=label)
      else:
        message.field.add(name=name, number=number, type=kind, label=label)
  pool.Add(file_proto)
  return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f'{package}.{name}'))
          for name in messages}
