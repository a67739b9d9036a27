"""The serving contract of each model: its signatures, their inputs and the outputs they return.

Both SavedModels take raw inputs and run the Transform graph inside. The trainers export these
signatures, and the infra validator, the evaluators, the publisher and the clients rely on them.
"""

CLASSIFIER = 'classifier'
GENERATOR = 'generator'
MODEL_KINDS = (CLASSIFIER, GENERATOR)

# The classifier: encoded images, or serialized tf.Examples with an `image` feature, in; class
# probabilities, ids and names out. `image_features` exposes the last hidden layer for the
# generator's metrics, on Transform's [0, 1] pixels.
CLASSIFY_IMAGES = 'serving_default'
CLASSIFY_EXAMPLES = 'serving_examples'
IMAGE_FEATURES = 'image_features'
# The generator: noise, or a count and a seed, in; images as floats in [0, 1] (and PNGs) out.
GENERATE_FROM_NOISE = 'serving_default'
GENERATE = 'generate'

# The output of `generate` holding the images as PNG files. TF Serving's REST API base64-encodes
# a string output only when its alias ends in `_bytes` (util/json_tensor.cc); under another name
# the PNG bytes would go into the JSON as raw text.
PNG_OUTPUT = 'png_bytes'

# The most images one `generate` call makes: a request of a few bytes must not be able to ask a
# model server for gigabytes (1,024 images of 28x28 are about 4 MB of response).
MAX_GENERATED_IMAGES = 1024

# What a model kind must serve: signature -> (its inputs, the outputs it must return).
CONTRACTS = {
    CLASSIFIER: {
        CLASSIFY_IMAGES: (('images',), ('probabilities', 'class_ids', 'class_names')),
        CLASSIFY_EXAMPLES: (('examples',), ('probabilities', 'class_ids', 'class_names')),
    },
    GENERATOR: {
        GENERATE_FROM_NOISE: (('noise',), ('images',)),
        GENERATE: (('num_images', 'seed'), ('images', PNG_OUTPUT)),
    },
}
