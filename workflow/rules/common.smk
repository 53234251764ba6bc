# Helpers shared by every stage: model lookup, run paths and the target lists built from config.
import json
import re
import shlex

SCRIPTS = f"{workflow.basedir}/scripts"
MODEL_NAME = re.compile(r"^(?P<base>[a-z][a-z0-9_]*)(?:-L(?P<latent>[0-9]+))?$")
ATTRACTOR_SYSTEMS = ["lorenz", "rossler", "arneodo"]
SIMULATED_NWB = ["reaching"]
# Per model kind, what a training job asks the cluster for unless the model's config says otherwise.
DEFAULT_TRAIN_RESOURCES = {
    "sequential_autoencoder": {"gpu": 1, "mem_mb": 8000, "runtime": 720},
    "smoothing": {"gpu": 0, "mem_mb": 16000, "runtime": 60},
}


def model_params(name):
    """The config of model `name`; a `-L<k>` suffix sets its latent size to k."""
    match = MODEL_NAME.match(name)
    if match is None or match["base"] not in config["models"]:
        raise ValueError(
            f"config: models: no model named '{name}' (known: {sorted(config['models'])})"
        )
    params = dict(config["models"][match["base"]])
    if match["latent"] is not None:
        params["latent_size"] = int(match["latent"])
    return params


def json_arg(value):
    """A JSON string quoted for the shell."""
    return shlex.quote(json.dumps(value))


def train_resource(name, key):
    params = model_params(name)
    return params.get("resources", {}).get(
        key, DEFAULT_TRAIN_RESOURCES[params["kind"]][key]
    )


def run_dir(dataset, model, seed):
    return f"results/runs/{dataset}/{model}/seed{seed}"


def attractor_model_names():
    study = config.get("attractor_study")
    if not study:
        return []
    return [f"{m}-L{k}" for m in study["models"] for k in study["latent_sizes"]]


def attractor_runs():
    study = config.get("attractor_study")
    if not study:
        return []
    return [
        run_dir(system, model, seed)
        for system in study["systems"]
        for model in attractor_model_names()
        for seed in study["seeds"]
    ]


def nlb_binned_names():
    study = config.get("nlb_study")
    if not study:
        return []
    return [f"{d}_{b}ms" for d in study["datasets"] for b in study["bin_sizes_ms"]]


def nlb_runs():
    study = config.get("nlb_study")
    if not study:
        return []
    return [
        run_dir(dataset, model, seed)
        for dataset in nlb_binned_names()
        for model in study["models"]
        for seed in study["seeds"]
    ]


def trajectory_runs(system):
    """Runs drawn in the trajectory and eigenvalue figures: first seed, chosen latent sizes."""
    study = config["attractor_study"]
    sizes = [k for k in study["trajectory_latent_sizes"] if k in study["latent_sizes"]]
    return [
        run_dir(system, f"{m}-L{k}", study["seeds"][0])
        for m in study["models"]
        for k in sizes
    ]


ATTRACTOR_FIGURES = {
    "fig1c_nll": "nll",
    "fig2a_rate_r2": "rate_r2",
    "fig2c_state_r2": "state_r2",
}


def all_targets():
    targets = []
    study = config.get("attractor_study")
    if study:
        targets.append("results/tables/attractor_study.csv")
        targets += expand("results/figures/{name}.png", name=ATTRACTOR_FIGURES)
        for system in study["systems"]:
            targets += [
                f"results/figures/fig1a_example_data_{system}.png",
                f"results/figures/fig3a_latent_trajectories_{system}.png",
                f"results/figures/fig3b_fixed_point_eigenvalues_{system}.png",
            ]
    if config.get("nlb_study"):
        targets += ["results/tables/nlb_study.csv", "results/figures/nlb_metrics.png"]
    return targets


def nwb_inputs(wildcards):
    """What binning `dataset` reads: a simulated NWB and its truth, a user's NWB files, or a download."""
    name = wildcards.dataset
    if name in SIMULATED_NWB:
        return {
            "nwb": f"results/data/nwb/{name}/{name}.nwb",
            "truth": f"results/data/nwb/{name}/{name}_truth.h5",
        }
    if name in config["user_datasets"]:
        return {"nwb": config["user_datasets"][name]["nwb"]}
    if name in config["nlb_sources"]:
        return {"manifest": f"results/data/nwb/{name}/manifest.json"}
    raise ValueError(
        f"config: nlb_study.datasets: '{name}' is neither an NLB source, a user dataset nor simulated"
    )


def nwb_arguments(wildcards, input):
    """bin_nwb.py's source and spec arguments for `dataset`."""
    name = wildcards.dataset
    if name in SIMULATED_NWB:
        return f"--nwb {input.nwb} --truth {input.truth} --spec mc_maze"
    if name in config["user_datasets"]:
        spec = {k: v for k, v in config["user_datasets"][name].items() if k != "nwb"}
        spec["bin_ms"] = [int(wildcards.bin_ms)]
        return f"--nwb {' '.join(input.nwb)} --spec-json {json_arg(spec)}"
    return f"--manifest {input.manifest}"


def test_targets_argument(wildcards):
    """In the NLB test phase, score against the public test-split ground truth when configured."""
    study = config.get("nlb_study") or {}
    if study.get("phase") != "test" or not study.get("test_targets"):
        return ""
    if re.sub(r"_[0-9]+ms$", "", wildcards.dataset) not in config["nlb_sources"]:
        return ""
    return f"--test-targets {study['test_targets']}"


def check_study_models():
    """Every model a study names must be defined under `models:`."""
    for study in ("attractor_study", "nlb_study"):
        for name in (config.get(study) or {}).get("models", []):
            if name not in config["models"]:
                raise ValueError(
                    f"config: {study}.models: no model named '{name}' (known: {sorted(config['models'])})"
                )


check_study_models()
