"""The examples' features: the tf.Example layout ImageExampleGen writes and the models read."""

IMAGE_KEY = 'image'            # bytes: PNG, normalised to the configured size and channels
LABEL_KEY = 'label'            # int64: class id, an index into the class map
LABEL_NAME_KEY = 'label_name'  # bytes: class name
HEIGHT_KEY = 'height'          # int64
WIDTH_KEY = 'width'            # int64
CHANNELS_KEY = 'channels'      # int64: 1 (grayscale) or 3 (RGB)
SOURCE_KEY = 'source'          # bytes: relative path, or "<file>:<index>"; the split hash key
# Figures of each image for data validation: the drift of a new span from the last one trained
# on is measured on their distributions (and on the label's).
ORIGINAL_HEIGHT_KEY = 'original_height'  # int64: the height of the image as read, before resizing
ORIGINAL_WIDTH_KEY = 'original_width'    # int64: likewise its width
MEAN_INTENSITY_KEY = 'mean_intensity'    # float: the mean of the normalised pixels, in [0, 1]
