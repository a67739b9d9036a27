"""The examples' features: the tf.Example layout ImageExampleGen writes and the models read."""

IMAGE_KEY = 'image'            # bytes: PNG, normalised to the configured size and channels
LABEL_KEY = 'label'            # int64: class id, an index into the class map
LABEL_NAME_KEY = 'label_name'  # bytes: class name
HEIGHT_KEY = 'height'          # int64
WIDTH_KEY = 'width'            # int64
CHANNELS_KEY = 'channels'      # int64: 1 (grayscale) or 3 (RGB)
SOURCE_KEY = 'source'          # bytes: relative path, or "<file>:<index>"; the split hash key
