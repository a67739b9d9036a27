"""Image sources, chosen by name; all go through the same Beam pipeline."""

from typing import Callable, Dict

from ganpipe.components.image_example_gen import images
from ganpipe.components.image_example_gen import options
from ganpipe.components.image_example_gen.sources import base
from ganpipe.components.image_example_gen.sources import builtin
from ganpipe.components.image_example_gen.sources import folder
from ganpipe.components.image_example_gen.sources import idx
from ganpipe.components.image_example_gen.sources import npz
from ganpipe.components.image_example_gen.sources import tfrecord

_OPENERS: Dict[str, Callable[[str, images.ImagePolicy], base.ImageSource]] = {
    options.DIGITS: lambda input_base, policy: builtin.DigitsSource(),
    options.FASHION_MNIST: lambda input_base, policy: builtin.FashionMnistSource(
        input_base or None),
    options.FOLDER: lambda input_base, policy: folder.FolderSource(
        input_base, images.max_file_bytes(policy.max_pixels)),
    options.IDX: lambda input_base, policy: idx.IdxSource(input_base, max_pixels=policy.max_pixels),
    options.NPZ: lambda input_base, policy: npz.NpzSource(input_base, policy.max_pixels),
    options.TFRECORD: lambda input_base, policy: tfrecord.TfRecordSource(input_base),
}
# The same names as options.SOURCES, which the configuration checks without loading any source.
SOURCES = tuple(_OPENERS)
# Sources that read nothing but what a package ships.
BUILT_IN = (options.DIGITS,)


def open_source(name: str, input_base: str, policy: images.ImagePolicy) -> base.ImageSource:
  """Opens the source `name` reading `input_base` (a folder or URI; ignored by `digits`).

  A folder source reads no file larger than an image under `policy` can be, and IDX and npz
  sources refuse images over its `max_pixels` from their headers.

  Raises:
    ValueError: unknown source.
    FileNotFoundError: the input is missing, with how to provide it.
  """
  if name not in _OPENERS:
    raise ValueError(f'unknown image source {name!r}; expected one of {", ".join(SOURCES)}')
  return _OPENERS[name](input_base, policy)
