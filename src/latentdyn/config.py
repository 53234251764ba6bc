"""Config checking with one clear line per error: the schema before Snakemake fills its defaults, then
what a schema cannot say."""

import re

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from latentdyn.errors import ConfigError
from latentdyn.models.kinds import get_kind, kind_names, require_capability, resolve_model

STUDIES = (
    "attractor_study", "nlb_study", "synthetic_study", "sbtt_study", "sbtt_pretraining_study", "two_photon_study",
    "latency_study", "multisession_study", "small_data_study", "cd_study", "generative_study",
)


def check_config(config, schema_path, source="config"):
    """Raise ConfigError naming the offending key if `config` does not match the JSON schema, whose model
    kinds are the registry's (the schema file leaves them open, so that they are listed once)."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    schema["definitions"]["model"]["properties"]["kind"]["enum"] = list(kind_names())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return
    _fail(source, ".".join(str(part) for part in error.absolute_path) or "<top level>", error.message)


def drop_switched_off_studies(config):
    """Remove studies set to null (switched off): Snakemake's default-filling validate cannot take null."""
    for study in STUDIES:
        if study in config and config[study] is None:
            del config[study]


def check_semantics(config, source="config"):
    """Raise ConfigError naming the key for what the schema cannot express (run on the filled config)."""
    for study in STUDIES:
        for name in (config.get(study) or {}).get("models", []):
            if name not in config["models"]:
                _fail(source, f"{study}.models", f"no model named '{name}' (known: {sorted(config['models'])})")
    for study_model, per_dataset in config.get("dataset_models", {}).items():
        for dataset, name in per_dataset.items():
            if name not in config["models"]:
                _fail(source, f"dataset_models.{study_model}.{dataset}", f"no model named '{name}'")
    attractor = config.get("attractor_study")
    if attractor:
        untrained = [k for k in attractor["trajectory_latent_sizes"] if k not in attractor["latent_sizes"]]
        if untrained:
            _fail(source, "attractor_study.trajectory_latent_sizes",
                  f"{untrained} not in attractor_study.latent_sizes {attractor['latent_sizes']}; only trained "
                  "sizes can be drawn")
    _check_sbtt_study(config, source)
    _check_pretraining_study(config, source)
    _check_two_photon_study(config, source)
    _check_latency_study(config)
    _check_multisession_study(config, source)
    _check_generative_study(config, source)
    _check_nodes(config, source)
    bin_sizes = (config.get("nlb_study") or {}).get("bin_sizes_ms", [])
    for name, dataset in config.get("user_datasets", {}).items():
        if "window_ms" not in dataset:  # every session already binned: no window to cut
            continue
        start, end = dataset["window_ms"]
        misfits = [b for b in bin_sizes if (end - start) % b]
        if end <= start or misfits:
            _fail(source, f"user_datasets.{name}.window_ms",
                  f"the window [{start}, {end}] ms must have end > start and a length divisible by every "
                  f"bin size in nlb_study.bin_sizes_ms {bin_sizes}")


def _check_sbtt_study(config, source):
    """Every bandwidth the SBTT study uses must be one the masks rule makes (bandwidth_masks.bandwidths).

    `dataset_bandwidths` entries of datasets not in the study are ignored: config files are merged, so a
    smaller study in a user's file may leave the paper config's entries behind.
    """
    study = config.get("sbtt_study")
    if not study:
        return
    allowed = config.get("bandwidth_masks", {}).get("bandwidths", [])
    per_dataset = study.get("dataset_bandwidths", {})
    lists = [("sbtt_study.bandwidths", study["bandwidths"])]
    lists += [(f"sbtt_study.dataset_bandwidths.{d}", per_dataset[d]) for d in study["datasets"] if d in per_dataset]
    for key, bandwidths in lists:
        missing = [b for b in bandwidths if b not in allowed]
        if missing:
            _fail(source, key, f"{missing} not in bandwidth_masks.bandwidths {allowed}; masks are made only for those")


def _check_pretraining_study(config, source):
    """Pretraining needs an SBTT model (gradient-trained, unobserved entries skipped) and masks it can use."""
    study = config.get("sbtt_pretraining_study")
    if not study:
        return
    name = study["model"]
    if name not in config["models"]:
        _fail(source, "sbtt_pretraining_study.model", f"no model named '{name}' (known: {sorted(config['models'])})")
    params = config["models"][name]
    if not get_kind(params["kind"]).gradient_trained or params.get("unobserved", "skip") != "skip":
        _fail(source, "sbtt_pretraining_study.model",
              f"'{name}' must be gradient-trained with unobserved: skip (SBTT) to adapt pretrained weights")
    allowed = config.get("bandwidth_masks", {}).get("bandwidths", [])
    missing = [b for b in study["bandwidths"] if b not in allowed]
    if missing:
        _fail(source, "sbtt_pretraining_study.bandwidths",
              f"{missing} not in bandwidth_masks.bandwidths {allowed}; masks are made only for those")


def _check_two_photon_study(config, source):
    """Calcium (dF/F) needs a model that fits continuous data (its kind's `continuous_data`)."""
    for name in (config.get("two_photon_study") or {}).get("models", []):
        params = resolve_model(name, config["models"][name])
        kind = get_kind(params["kind"])
        if not kind.fits_continuous_data(params):
            able = [_continuous_data_condition(get_kind(other)) for other in kind_names()]
            _fail(source, "two_photon_study.models",
                  f"'{name}' ({_continuous_data_setting(kind, params)}) cannot fit dF/F; "
                  f"use a model of kind {', or '.join(condition for condition in able if condition)}")


def _continuous_data_setting(kind, params):
    """The kind and, when it decides, the param that makes model `params` fit continuous data or not."""
    if isinstance(kind.continuous_data, dict):
        param = kind.continuous_data["param"]
        return f"{kind.name}, {param}: {params.get(param)}"
    return kind.name


def _continuous_data_condition(kind):
    """How a model of `kind` fits continuous data, for an error message; None if it cannot."""
    if isinstance(kind.continuous_data, dict):
        return f"{kind.name} with {kind.continuous_data['param']}: {' or '.join(kind.continuous_data['values'])}"
    return kind.name if kind.continuous_data else None


def _check_latency_study(config):
    """Only models whose kind has an inference entry point (realtime_inference) can be timed."""
    for name in (config.get("latency_study") or {}).get("models", []):
        require_capability(name, config["models"][name], "realtime_inference", "latency_study.models")


def _check_multisession_study(config, source):
    """Stitched runs need a multisession kind and datasets of several sessions (simulated, NLB or the user's)."""
    study = config.get("multisession_study") or {}
    for name in study.get("models", []):
        require_capability(name, config["models"][name], "multisession", "multisession_study.models")
    for name, sources in config.get("nlb_multisession", {}).items():
        unknown = [dataset for dataset in sources if dataset not in config["nlb_sources"]]
        if unknown:
            _fail(source, f"nlb_multisession.{name}", f"{unknown} are not NLB sources (nlb_sources)")
    known = ["reaching_ms", *config.get("nlb_multisession", {}),
             *(name for name, d in config.get("user_datasets", {}).items() if "sessions" in d)]
    for name in study.get("datasets", []):
        if name not in known:
            _fail(source, "multisession_study.datasets", f"'{name}' is not a multisession dataset (known: {known})")
    for name in (config.get("nlb_study") or {}).get("datasets", []):
        if "sessions" in config.get("user_datasets", {}).get(name, {}):
            _fail(source, "nlb_study.datasets", f"'{name}' is a multisession dataset: list it in multisession_study.datasets")


def _check_generative_study(config, source):
    """Its models must generate from codes; its datasets must be binned recordings or simulations with
    conditions. A count withheld from the simulated task is checked here against its directions (known
    before it is simulated); other counts and names, against the file when it is made."""
    study = config.get("generative_study") or {}
    for name in study.get("models", []):
        require_capability(name, config["models"][name], "code_generation", "generative_study.models")
    sources = ["reaching", *config.get("nlb_sources", {}), *config.get("user_datasets", {})]
    for name in study.get("datasets", []):
        if re.sub(r"_[0-9]+ms$", "", name) not in sources:
            _fail(source, "generative_study.datasets", f"'{name}' is not <source>_<bin>ms of a source with "
                  f"conditions (known sources: {sources})")
        if name not in study["withheld_conditions"]:
            _fail(source, "generative_study.withheld_conditions", f"no entry for dataset '{name}'")
        withheld, n_directions = study["withheld_conditions"][name], config["reaching"]["n_directions"]
        if re.fullmatch(r"reaching_[0-9]+ms", name) and isinstance(withheld, (int, float)) and withheld >= n_directions:
            _fail(source, f"generative_study.withheld_conditions.{name}", f"cannot withhold {withheld} of the "
                  f"simulated task's {n_directions} directions (reaching.n_directions): one must stay seen")


def _check_nodes(config, source):
    """Several nodes serve only a kind that spreads over them (capability ray_cluster); any other job runs
    on one and would leave the rest idle. Checked here, before any job, whichever rule would train it."""
    for name, params in config["models"].items():
        nodes = params.get("resources", {}).get("nodes", 1)
        kind = get_kind(params["kind"])
        if nodes > 1 and "ray_cluster" not in kind.capabilities:
            _fail(source, f"models.{name}.resources.nodes", f"{nodes} nodes, but a {kind.name} job runs on one")


def _fail(source, key, problem):
    raise ConfigError(f"{source}: key '{key}': {problem}")
