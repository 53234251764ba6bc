"""Model kinds: the one registry that rules, scripts and figures ask about a model.

A kind is one package holding `kind.yaml` and `model.py`, and nothing else names it: every package
`latentdyn/models/<kind>/` with a `kind.yaml` is a kind, and so is every entry point of the group
`latentdyn.kinds` (name: the kind, value: an importable package), so a lab adds a kind in its own
installed package:

    [project.entry-points."latentdyn.kinds"]
    gpfa = "mylab.gpfa"            # mylab/gpfa/ holds kind.yaml and model.py

A name registered twice (an entry point shadowing a built-in kind) is a ConfigError. `kind_names()`
lists every kind; `get_kind(name)` reads one.

`kind.yaml` is read without importing torch, so the Snakefile can validate configs and size jobs
cheaply. Its fields (KIND_FILE_SCHEMA checks them):

    description        what the kind is, in one line
    gradient_trained   true: fitted by the shared trainer, whose settings (training/schema.yaml) join
                       the kind's schema; false: model.py has fit(model, prepared, params)
    extends            optional: another kind whose params (its whole schema, trainer settings included)
                       join this kind's, under this kind's own (autolfads: every LFADS param)
    schema             JSON schema of the kind's params (`required`, `properties` with defaults)
    resources          default cluster resources of a training job: gpu, mem_mb, runtime (minutes); optional
                       nodes (default 1) and cpus (the job's threads; the config's `threads` otherwise)
    colour             matplotlib colour of the kind's models in figures comparing models
    capabilities       optional, any of: `latent_dynamics` (the model has `.dynamics` with `step` and
                       `fixed_point_residual`, and its output names the state latent in the
                       `state_latent` attribute), `multisession`, `realtime_inference` (model.py has
                       `infer_rates(model, encoder_input) -> rates`, one pass over a batch of trials:
                       what a real-time decoder runs and the latency study times),
                       `compiled_inference` (torch.compile of `infer_rates` finishes quickly enough to
                       be timed too), `ray_cluster` (training drives Ray: under Slurm the training job
                       first starts a Ray cluster across its allocation, scripts/ray_slurm.sh, and
                       passes its address in RAY_ADDRESS; elsewhere the kind starts a local Ray),
                       `stacked_training` (model.py has `stack(models, generators)`:
                       K models of one shape trained as one, each member a run of its own, equal to
                       training it alone; training/contract.py, training/stacked.py),
                       `code_generation` (each trial has a code, the output latent `CODE_LATENT` of its
                       model.py, and `generate(model, codes) -> rates` gives a trial from any code: the
                       generative study's disentanglement, unseen-condition and realism experiments)
    stacking           optional, with `stacked_training`: `unless` (params that, when set, rule
                       stacking out: the model trains alone) and `member_resources` (mem_mb and
                       runtime that each member beyond the first adds to a stack's job)
    prediction_only    optional: params that change predictions but not the trained weights
    optional_monitors  optional: validation quantity -> the param that must be set (nonzero) for it to
                       be logged, so monitoring it without that is a config error, not a crash after
                       the first epoch
    figures            optional: the per-run figures its runs offer (results/figures/<figure>_<dataset>_
                       <model>.png, the workflow's RUN_FIGURES), each with its conditions:
                       `needs_true_rates: true` (only on simulated datasets), `needs_param: <param>`
                       (only when that param is nonzero)
    continuous_data    optional: whether it fits continuous data such as dF/F, not only counts: `true`,
                       or `{param: <param>, values: [...]}` (only with one of those values); absent: no
    count_likelihood   optional: whether its likelihood counts (Poisson), so that data with negative or
                       fractional entries is refused before training: `true` or `{param, values}` as
                       continuous_data; absent: no
    latency_role       optional: `goal` (the kind the latency goal is set for) or `baseline` (the kind
                       it must beat); one kind each (latency_kinds(), metrics/latency_goal.py)

`model.py` provides

    build(params, shapes) -> model                 shapes: latentdyn.data.prepare.DataShapes
    predict(model, prepared, params, device) -> dict of output arrays (docs/formats.md)

and, for kinds not trained by gradient, `fit(model, prepared, params)`; gradient-trained models are
`nn.Module`s that own their step (training/contract.py) and are fitted by the shared trainer.
"""

import importlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.metadata import entry_points

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from latentdyn.errors import ConfigError
from latentdyn.models.kind_contract import check_implementation

BUILT_IN_PACKAGE = "latentdyn.models"
ENTRY_POINT_GROUP = "latentdyn.kinds"
CAPABILITIES = ["latent_dynamics", "multisession", "realtime_inference", "compiled_inference", "stacked_training",
                "ray_cluster", "code_generation"]
RUN_FIGURE_CONDITIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"needs_true_rates": {"type": "boolean"}, "needs_param": {"type": "string"}},
}
# A kind.yaml flag that holds for every model of the kind (`true`) or only for some values of a param.
PARAM_DEPENDENT_FLAG = {
    "oneOf": [
        {"const": True},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["param", "values"],
            "properties": {"param": {"type": "string"}, "values": {"type": "array", "minItems": 1}},
        },
    ]
}
RESOURCES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "cluster resources of this model's training jobs (the kind's defaults otherwise)",
    "properties": {
        "gpu": {"type": "integer", "minimum": 0},
        "mem_mb": {"type": "integer", "minimum": 1},
        "runtime": {"type": "integer", "minimum": 1, "description": "minutes"},
        "nodes": {"type": "integer", "minimum": 1, "description": "Slurm nodes (several only for ray_cluster kinds)"},
        "cpus": {"type": "integer", "minimum": 1, "description": "CPUs (threads) of the job; the config's threads otherwise"},
    },
}
KIND_FILE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["description", "gradient_trained", "schema", "resources", "colour"],
    "properties": {
        "description": {"type": "string"},
        "gradient_trained": {"type": "boolean"},
        "extends": {"type": "string"},
        "schema": {"type": "object"},
        "resources": {**RESOURCES_SCHEMA, "required": ["gpu", "mem_mb", "runtime"]},
        "colour": {"type": "string"},
        "capabilities": {"type": "array", "items": {"enum": CAPABILITIES}},
        "prediction_only": {"type": "array", "items": {"type": "string"}},
        "optional_monitors": {"type": "object", "additionalProperties": {"type": "string"}},
        "figures": {"type": "object", "additionalProperties": RUN_FIGURE_CONDITIONS},
        "continuous_data": PARAM_DEPENDENT_FLAG,
        "count_likelihood": PARAM_DEPENDENT_FLAG,
        "latency_role": {"enum": ["goal", "baseline"]},
        "stacking": {
            "type": "object",
            "additionalProperties": False,
            "required": ["member_resources"],
            "properties": {
                "unless": {"type": "array", "items": {"type": "string"}},
                "member_resources": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mem_mb", "runtime"],
                    "properties": {"mem_mb": {"type": "integer", "minimum": 0}, "runtime": {"type": "integer", "minimum": 0}},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class ModelKind:
    name: str
    package: str  # importable package holding kind.yaml and model.py
    description: str
    gradient_trained: bool
    capabilities: frozenset
    resources: dict
    prediction_only: tuple  # params that change predictions but not the trained weights
    schema: dict
    optional_monitors: dict  # validation quantity -> the param that must be set (nonzero) for it to be logged
    colour: str
    figures: dict  # per-run figure -> its conditions (needs_true_rates, needs_param)
    continuous_data: bool | dict  # True, {param, values} (only with one of the values) or False
    count_likelihood: bool | dict  # as continuous_data
    latency_role: str | None
    stacking: dict | None  # with capability stacked_training: unless, member_resources

    def implementation(self):
        module = importlib.import_module(f"{self.package}.model")
        check_implementation(self, module)
        return module

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

    def run_figures(self, params, has_true_rates):
        """The per-run figures a run of this kind with (resolved) `params` offers, on a dataset with or
        without true rates."""
        return [
            figure
            for figure, needs in self.figures.items()
            if (has_true_rates or not needs.get("needs_true_rates"))
            and ("needs_param" not in needs or params.get(needs["needs_param"]))
        ]

    def fits_continuous_data(self, params):
        """Whether a model of this kind with (resolved) `params` can fit continuous data such as dF/F."""
        return _holds(self.continuous_data, params)

    def stacks(self, params):
        """Whether models of this kind with (resolved) `params` can be trained in a stack with others of
        the same params (training/stacked.py)."""
        if "stacked_training" not in self.capabilities:
            return False
        return not any(params.get(name) for name in (self.stacking or {}).get("unless", []))

    def stack_resources(self, resources, n_members):
        """The cluster resources of a job training `n_members` as one stack, from one member's."""
        extra = (self.stacking or {}).get("member_resources", {})
        return {key: value + (n_members - 1) * extra.get(key, 0) for key, value in resources.items()}

    def needs_counts(self, params):
        """Whether a model of this kind with (resolved) `params` scores its data with a count likelihood
        (Poisson), which negative or fractional entries would make meaningless."""
        return _holds(self.count_likelihood, params)


def _holds(flag, params):
    """A PARAM_DEPENDENT_FLAG's value for a model with (resolved) `params`."""
    if isinstance(flag, dict):
        return params.get(flag["param"]) in flag["values"]
    return flag


@cache
def kind_packages():
    """Kind name -> its package: the built-in packages holding kind.yaml, then the `latentdyn.kinds`
    entry points of installed distributions; a name registered twice is a ConfigError."""
    packages = {
        entry.name: f"{BUILT_IN_PACKAGE}.{entry.name}"
        for entry in resources.files(BUILT_IN_PACKAGE).iterdir()
        if entry.joinpath("kind.yaml").is_file()
    }
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in packages:
            raise ConfigError(
                f"model kind '{entry_point.name}': registered twice, as {packages[entry_point.name]} and by the"
                f" {ENTRY_POINT_GROUP} entry point '{entry_point.name} = {entry_point.value}'; rename one"
            )
        packages[entry_point.name] = entry_point.value
    return packages


def kind_names():
    """Every registered model kind, sorted."""
    return tuple(sorted(kind_packages()))


@cache
def get_kind(name):
    packages = kind_packages()
    if name not in packages:
        raise ConfigError(f"config: unknown model kind '{name}' (known: {', '.join(kind_names())})")
    spec = read_kind_file(name, packages[name])
    properties, required = {}, []
    if "extends" in spec:
        if spec["extends"] not in packages or spec["extends"] == name:
            raise ConfigError(f"model kind '{name}': {packages[name]}/kind.yaml: key 'extends': no other kind '{spec['extends']}'")
        base = get_kind(spec["extends"]).schema
        properties.update(base["properties"])
        required += [key for key in base["required"] if key != "kind"]
    elif spec["gradient_trained"]:
        trainer = yaml.safe_load(resources.files("latentdyn.training").joinpath("schema.yaml").read_text())
        properties.update(trainer)
    properties.update(spec["schema"].get("properties", {}))
    properties["kind"] = {"const": name}
    properties["resources"] = RESOURCES_SCHEMA
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", *dict.fromkeys(required + spec["schema"].get("required", []))],
        "properties": properties,
    }
    return ModelKind(
        name=name,
        package=packages[name],
        description=spec["description"],
        gradient_trained=spec["gradient_trained"],
        capabilities=frozenset(spec.get("capabilities", [])),
        resources=spec["resources"],
        prediction_only=tuple(spec.get("prediction_only", [])),
        schema=schema,
        optional_monitors=spec.get("optional_monitors", {}),
        colour=spec["colour"],
        figures=spec.get("figures", {}),
        continuous_data=spec.get("continuous_data", False),
        count_likelihood=spec.get("count_likelihood", False),
        latency_role=spec.get("latency_role"),
        stacking=spec.get("stacking"),
    )


def read_kind_file(name, package):
    """The kind.yaml of kind `name` in `package`, checked against KIND_FILE_SCHEMA."""
    try:
        spec = yaml.safe_load(resources.files(package).joinpath("kind.yaml").read_text())
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise ConfigError(f"model kind '{name}': cannot read {package}/kind.yaml ({error})") from error
    error = best_match(Draft202012Validator(KIND_FILE_SCHEMA).iter_errors(spec))
    if error is not None:
        key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
        raise ConfigError(f"model kind '{name}': {package}/kind.yaml: key '{key}': {error.message}")
    return spec




def latency_kinds():
    """(goal kind, baseline kind) of the latency goal (metrics/latency_goal.py): the one kind declaring each
    `latency_role`."""
    found = []
    for role in ("goal", "baseline"):
        named = [name for name in kind_names() if get_kind(name).latency_role == role]
        if len(named) != 1:
            raise ConfigError(f"model kinds: exactly one must declare latency_role: {role}, not {named}")
        found += named
    return tuple(found)


def require_capability(name, params, capability, key):
    """The kind of model `name`; a ConfigError naming `key` if that kind lacks `capability`."""
    kind = get_kind(params["kind"])
    if capability not in kind.capabilities:
        able = [other for other in kind_names() if capability in get_kind(other).capabilities]
        raise ConfigError(
            f"config: key '{key}': '{name}' is a model of kind {kind.name}, which has no {capability}"
            f" (kinds with it: {', '.join(able)})"
        )
    return kind


def resolve_model(name, params):
    """The config section of model `name`, validated against its kind, defaults filled."""
    if not isinstance(params, dict) or "kind" not in params:
        raise ConfigError(f"config: key 'models.{name}.kind': required (one of {', '.join(kind_names())})")
    if params["kind"] not in kind_packages():
        raise ConfigError(
            f"config: key 'models.{name}.kind': unknown kind '{params['kind']}' (known: {', '.join(kind_names())})"
        )
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
