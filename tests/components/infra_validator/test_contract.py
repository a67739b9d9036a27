"""The serving contracts: the signatures each model kind must have, and a generator's noise size."""

import pytest

from ganpipe.components.infra_validator import contract
from ganpipe.models import signatures


def _metadata(kind):
  return {signature: {'inputs': {name: {'shape': [None, 5]} for name in inputs},
                      'outputs': {name: {} for name in outputs}}
          for signature, (inputs, outputs) in signatures.CONTRACTS[kind].items()}


def test_signature_contracts():
  for kind in signatures.MODEL_KINDS:
    contract.check_signatures(kind, _metadata(kind))
  metadata = _metadata(signatures.GENERATOR)
  assert contract.latent_dim_of(metadata) == 5
  del metadata['generate']
  metadata['__saved_model_init_op'] = {'inputs': {}, 'outputs': {}}  # not callable: not listed
  with pytest.raises(contract.InvalidAnswer,
                     match="signature 'generate' is missing; the model has: serving_default"):
    contract.check_signatures(signatures.GENERATOR, metadata)
  metadata = _metadata(signatures.CLASSIFIER)
  metadata['serving_examples']['inputs'] = {'inputs': {}}
  with pytest.raises(contract.InvalidAnswer, match=r"'serving_examples' takes inputs "
                                                   r"\['inputs'\], expected \['examples'\]"):
    contract.check_signatures(signatures.CLASSIFIER, metadata)
  metadata = _metadata(signatures.CLASSIFIER)
  del metadata['serving_default']['outputs']['class_ids']
  with pytest.raises(contract.InvalidAnswer, match="'serving_default' has no output 'class_ids'"):
    contract.check_signatures(signatures.CLASSIFIER, metadata)
  metadata = _metadata(signatures.GENERATOR)
  metadata['serving_default']['inputs']['noise']['shape'] = [None, None]
  with pytest.raises(contract.InvalidAnswer, match=r"'noise' .* has shape \[None, None\]"):
    contract.latent_dim_of(metadata)
