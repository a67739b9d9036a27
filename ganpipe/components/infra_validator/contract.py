"""Checking a served model's signatures against its kind's serving contract."""

from typing import Mapping

from ganpipe.models import signatures


class InvalidAnswer(ValueError):
  """A served model answered a request, but not as its contract says."""


def check_signatures(kind: str, metadata: Mapping[str, Mapping]) -> None:
  """Raises InvalidAnswer unless the model has every signature of its kind's contract."""
  # Like TF Serving, ganpipe's server lists the init op, which no client can call.
  callable_signatures = sorted(name for name in metadata if not name.startswith('__'))
  for signature, (inputs, outputs) in signatures.CONTRACTS[kind].items():
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
  shape = metadata[signatures.GENERATE_FROM_NOISE]['inputs']['noise']['shape']
  if shape is None or len(shape) != 2 or not shape[1]:
    raise InvalidAnswer(f"input 'noise' of signature {signatures.GENERATE_FROM_NOISE!r} has "
                        f'shape {shape}, expected [batch, latent_dim] with a known latent_dim')
  return shape[1]
