"""The serving contract of each model kind, and the check of a model's signatures against it."""

from typing import Mapping

CLASSIFIER = 'classifier'
GENERATOR = 'generator'
MODEL_KINDS = (CLASSIFIER, GENERATOR)
SERVING_DEFAULT = 'serving_default'
SERVING_EXAMPLES = 'serving_examples'
GENERATE = 'generate'

# The serving contract of each kind: signature -> (its inputs, the outputs it must return).
CONTRACTS = {
    CLASSIFIER: {
        SERVING_DEFAULT: (('images',), ('probabilities', 'class_ids', 'class_names')),
        SERVING_EXAMPLES: (('examples',), ('probabilities', 'class_ids', 'class_names')),
    },
    GENERATOR: {
        SERVING_DEFAULT: (('noise',), ('images',)),
        GENERATE: (('num_images', 'seed'), ('images', 'png')),
    },
}


class InvalidAnswer(ValueError):
  """A served model answered a request, but not as its contract says."""


def check_signatures(kind: str, metadata: Mapping[str, Mapping]) -> None:
  """Raises InvalidAnswer unless the model has every signature of its kind's contract."""
  # Like TF Serving, ganpipe's server lists the init op, which no client can call.
  callable_signatures = sorted(name for name in metadata if not name.startswith('__'))
  for signature, (inputs, outputs) in CONTRACTS[kind].items():
    if signature not in metadata:
      raise InvalidAnswer(f'signature {signature!r} is missing; the model has: '
                          f'{", ".join(callable_signatures) or "no signatures"}')
    declared = metadata[signature]
    if sorted(declared['inputs']) != sorted(inputs):
      raise InvalidAnswer(f'signature {signature!r} takes inputs {sorted(declared["inputs"])}, '
                          f'expected {sorted(inputs)}')
    missing = sorted(set(outputs) - set(declared['outputs']))
    if missing:
      raise InvalidAnswer(f'signature {signature!r} has no output {missing[0]!r}; its outputs: '
                          f'{", ".join(sorted(declared["outputs"]))}')


def latent_dim_of(metadata: Mapping[str, Mapping]) -> int:
  """The generator's noise size, from `serving_default`'s `noise` [batch, latent_dim] input."""
  shape = metadata[SERVING_DEFAULT]['inputs']['noise']['shape']
  if shape is None or len(shape) != 2 or not shape[1]:
    raise InvalidAnswer(f"input 'noise' of signature {SERVING_DEFAULT!r} has shape {shape}, "
                        'expected [batch, latent_dim] with a known latent_dim')
  return shape[1]
