"""Model kinds: the one registry that rules, scripts and figures ask about a model.

A kind is a package `latentdyn.models.<kind>` holding `kind.yaml` (its config schema with defaults,
default cluster resources, capabilities) and `model.py` (its code). `kind.yaml` is read without
importing torch, so the Snakefile can validate configs and size jobs cheaply. `model.py` provides

    build(params, shapes) -> model                 shapes: latentdyn.data.prepare.DataShapes
    predict(model, prepared, params, device) -> dict of output arrays (docs/formats.md)

and, for kinds not trained by gradient, `fit(model, prepared, params)`; gradient-trained models are
`nn.Module`s that own their step (training/contract.py) and are fitted by the shared trainer.
Capabilities: `latent_dynamics` (the model has `.dynamics` with `step` and `fixed_point_residual`,
and its output names the state latent in the `state_latent` attribute), `multisession`,
`realtime_inference` (`model.py` has `infer_rates(model, encoder_input) -> rates`, one pass over a batch
of trials: what a real-time decoder runs and the latency study times), `compiled_inference`
(torch.compile of `infer_rates` finishes quickly enough to be timed too). `optional_monitors` names the
validation quantities logged only when a param is set (e.g. `valid_sv_nll` needs sample validation), so
monitoring one without it is a config error, not a crash after the first epoch.
Adding a kind: its package, and its name in KIND_NAMES.
"""

import importlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from latentdyn.config import ConfigError

KIND_NAMES = ("sequential_autoencoder", "smoothing", "lfads", "ndt")


@dataclass(frozen=True)
class ModelKind:
    name: str
    description: str
    gradient_trained: bool
    capabilities: frozenset
    resources: dict
    prediction_only: tuple  # params that change predictions but not the trained weights
    schema: dict
    optional_monitors: dict  # validation quantity -> the param that must be set (nonzero) for it to be logged

    def implementation(self):
        return importlib.import_module(f"latentdyn.models.{self.name}.model")

    def resolve(self, params, where="models.<name>"):
        """`params` checked against the kind's schema, with every default filled in."""
        error = best_match(Draft202012Validator(self.schema).iter_errors(params))
        if error is not None:
            key = ".".join([where, *(str(p) for p in error.absolute_path)])
            if error.validator == "additionalProperties":
                extra = sorted(set(params) - set(self.schema["properties"]))
                key = f"{where}.{extra[0]}" if extra else key
            raise ConfigError(f"config: key '{key}': {error.message}")
        resolved = fill_defaults(self.schema, params)
        needed = self.optional_monitors.get(resolved.get("monitor"))
        if needed is not None and not resolved.get(needed):
            raise ConfigError(
                f"config: key '{where}.monitor': {resolved['monitor']} is logged only when '{needed}' is set"
            )
        return resolved


@cache
def get_kind(name):
    if name not in KIND_NAMES:
        raise ConfigError(f"config: unknown model kind '{name}' (known: {', '.join(KIND_NAMES)})")
    spec = yaml.safe_load(resources.files(f"latentdyn.models.{name}").joinpath("kind.yaml").read_text())
    properties = {"kind": {"const": name}}
    if spec["gradient_trained"]:
        trainer = yaml.safe_load(resources.files("latentdyn.training").joinpath("schema.yaml").read_text())
        properties.update(trainer)
    properties.update(spec["schema"].get("properties", {}))
    properties["resources"] = RESOURCES_SCHEMA
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", *spec["schema"].get("required", [])],
        "properties": properties,
    }
    return ModelKind(
        name=name,
        description=spec["description"],
        gradient_trained=spec["gradient_trained"],
        capabilities=frozenset(spec.get("capabilities", [])),
        resources=spec["resources"],
        prediction_only=tuple(spec.get("prediction_only", [])),
        schema=schema,
        optional_monitors=spec.get("optional_monitors", {}),
    )


RESOURCES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "cluster resources of this model's training jobs (the kind's defaults otherwise)",
    "properties": {
        "gpu": {"type": "integer", "minimum": 0},
        "mem_mb": {"type": "integer", "minimum": 1},
        "runtime": {"type": "integer", "minimum": 1, "description": "minutes"},
    },
}


def require_capability(name, params, capability, key):
    """The kind of model `name`; a ConfigError naming `key` if that kind lacks `capability`."""
    kind = get_kind(params["kind"])
    if capability not in kind.capabilities:
        able = [other for other in KIND_NAMES if capability in get_kind(other).capabilities]
        raise ConfigError(
            f"config: key '{key}': '{name}' is a model of kind {kind.name}, which has no {capability}"
            f" (kinds with it: {', '.join(able)})"
        )
    return kind


def resolve_model(name, params):
    """The config section of model `name`, validated against its kind, defaults filled."""
    if not isinstance(params, dict) or "kind" not in params:
        raise ConfigError(f"config: key 'models.{name}.kind': required (one of {', '.join(KIND_NAMES)})")
    if params["kind"] not in KIND_NAMES:
        raise ConfigError(f"config: key 'models.{name}.kind': unknown kind '{params['kind']}' (known: {', '.join(KIND_NAMES)})")
    return get_kind(params["kind"]).resolve(params, where=f"models.{name}")


def fill_defaults(schema, instance):
    """A copy of `instance` with the schema's `default`s filled in, nested objects included."""
    if schema.get("type") != "object" and "properties" not in schema:
        return instance
    if not isinstance(instance, dict):
        return instance
    filled = dict(instance)
    for key, sub in schema.get("properties", {}).items():
        if key not in filled and "default" in sub:
            filled[key] = sub["default"]
        if key in filled and isinstance(filled[key], dict):
            filled[key] = fill_defaults(sub, filled[key])
    return filled
