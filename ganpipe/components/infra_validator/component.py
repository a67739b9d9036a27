"""InfraValidator: serves a candidate model in a real model server and checks its answers."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from ganpipe.components.infra_validator import executor
from ganpipe.models import signatures


class InfraValidatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      executor.MODEL_NAME_KEY: component_spec.ExecutionParameter(type=str),
      executor.MODEL_KIND_KEY: component_spec.ExecutionParameter(type=str),
      executor.TIMEOUT_SECONDS_KEY: component_spec.ExecutionParameter(type=float),
      executor.NUM_REQUESTS_KEY: component_spec.ExecutionParameter(type=int),
      executor.SERVING_BINARY_KEY: component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      executor.MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {
      executor.BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.InfraBlessing),
  }


class InfraValidator(base_component.BaseComponent):
  """Loads the model in a TF Serving compatible server and sends it real requests.

  TFX's InfraValidator runs TF Serving only in Docker or on Kubernetes; this one runs
  `tensorflow_model_server` (when on PATH, or given as `serving_binary`) or else ganpipe's own
  server, as a local subprocess on a loopback port. The model must become AVAILABLE within
  `timeout_seconds`, then answer well-formed: a classifier, its first `num_requests` eval
  images through `serving_default` and `serving_examples`; a generator, noise through
  `serving_default` and `generate` with a seed (twice with the same seed, for the same images).
  A model that fails is not an error: the blessing says INFRA_NOT_BLESSED, and why.

  Inputs:
    model: Model, the SavedModel at `{uri}/Format-Serving/`.
    examples: Examples (optional; a classifier is only loaded without it), ImageExampleGen's
      `{uri}/Split-eval/*.gz`.

  Outputs:
    blessing: InfraBlessing, as TFX's InfraValidator writes it: an empty `{uri}/INFRA_BLESSED`
      or `{uri}/INFRA_NOT_BLESSED`, int property `blessed` and string property `reason`. When
      blessed after requests, `{uri}/stamped_model/` holds the model with the requests in
      `assets.extra/tf_serving_warmup_requests`, and int property `has_model` is 1, so TFX's
      Pusher given `infra_blessing` and no `model` pushes that.
  """
  SPEC_CLASS = InfraValidatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel, model_name: str, model_kind: str,
               examples: Optional[types.BaseChannel] = None, timeout_seconds: float = 120.0,
               num_requests: int = 8, serving_binary: str = ''):
    if model_kind not in signatures.MODEL_KINDS:
      raise ValueError(f'model_kind must be one of {", ".join(signatures.MODEL_KINDS)}, got '
                       f'{model_kind!r}')
    super().__init__(spec=InfraValidatorSpec(
        model=model, examples=examples, model_name=model_name, model_kind=model_kind,
        timeout_seconds=float(timeout_seconds), num_requests=num_requests,
        serving_binary=serving_binary,
        blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
