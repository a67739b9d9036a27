"""What ImageExampleGen can be asked for: sources, native shapes, formats and size policies.

Plain constants, with no TensorFlow or Beam import, so that the pipeline's configuration checks
its values against these very lists before anything loads.
"""

DIGITS = 'digits'
FASHION_MNIST = 'fashion-mnist'
FOLDER = 'folder'
IDX = 'idx'
NPZ = 'npz'
TFRECORD = 'tfrecord'

# Each source and the image shape it has natively; None: its images come in any size and are
# converted to the configured shape, DEFAULT_SHAPES[source] unless configured.
NATIVE_SHAPES = {
    DIGITS: (8, 8, 1),
    FASHION_MNIST: (28, 28, 1),
    FOLDER: None,
    IDX: None,
    NPZ: None,
    TFRECORD: None,
}
DEFAULT_SHAPES = {FOLDER: (32, 32, 3), IDX: (28, 28, 1), NPZ: (28, 28, 1), TFRECORD: (28, 28, 1)}
SOURCES = tuple(NATIVE_SHAPES)
# The sources that read the user's files, whose folder (input_base) they require.
NEEDS_INPUT_BASE = (FOLDER, IDX, NPZ, TFRECORD)

# What happens to an image of another size than the configured one.
RESIZE = 'resize'
REJECT = 'reject'
WRONG_SIZE_POLICIES = (RESIZE, REJECT)

# Image encodings as PIL names them, and the other names they go by.
FORMATS = ('png', 'jpeg', 'bmp', 'gif', 'tiff', 'webp')
FORMAT_ALIASES = {'jpg': 'jpeg'}
FORMAT_NAMES = FORMATS + tuple(FORMAT_ALIASES)
DEFAULT_FORMATS = ('png', 'jpeg', 'bmp', 'gif')

# The file names a folder source reads as images, matched as Keras' image_dataset_from_directory
# matches them (`fname.lower().endswith(formats)` in keras/src/utils/dataset_utils.py, with
# ALLOWLIST_FORMATS of keras/src/utils/image_dataset_utils.py), plus the extensions of the other
# formats this pipeline decodes. Other files (notes.txt, .DS_Store) are skipped and counted; an
# image in a format --data.formats leaves out is still read, and rejected with its reason.
KERAS_IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png')
IMAGE_EXTENSIONS = KERAS_IMAGE_EXTENSIONS + ('.tif', '.tiff', '.webp')

# The most pixels an input image may have: 8192 x 8192, more than any camera's photo. A PNG of a
# few kilobytes can declare a billion pixels; it is refused from its header, before decoding.
MAX_PIXELS = 8192 * 8192

# The input pattern of a source read whole, as span 0; any other pattern names, once the driver
# has filled in its span, the folder or file under the input base that the source reads.
WHOLE_INPUT = '*'
