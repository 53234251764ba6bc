# Helpers shared by every stage: model lookup, run paths and the target lists built from config.
import json
import re
import shlex

from latentdyn.models.kinds import get_kind, resolve_model

SCRIPTS = f"{workflow.basedir}/scripts"
# <model>[-L<k>][-P<n>]: -L<k> sets the latent size to k; -P<n> starts from <model>[-L<k>] pretrained on n
# fully observed trials (SBTT experiment 4, pretrained_weights below).
MODEL_NAME = re.compile(
    r"^(?P<base>[a-z][a-z0-9_]*)(?:-L(?P<latent>[1-9][0-9]*))?(?:-P(?P<pretrained>[1-9][0-9]*))?$"
)
MASKED_DATASET = re.compile(r"^(?P<source>[a-z0-9_]+)_bw[0-9]+$")
ATTRACTOR_SYSTEMS = ["lorenz", "rossler", "arneodo"]
SIMULATED_NWB = ["reaching"]
# Every model of the config, checked against its kind's schema, with the kind's defaults filled in.
MODELS = {
    name: resolve_model(name, params) for name, params in config["models"].items()
}


def model_params(name, dataset=None):
    """The config of model `name` (on `dataset`); a `-L<k>` suffix sets its latent size to k, a `-P<n>`
    suffix changes no setting (the run starts from pretrained weights: pretrained_weights).

    `dataset_models.<name>.<dataset>` names the model that `name` stands for on that dataset (a
    per-dataset preset: `lfads` on mc_rtt_5ms trains `lfads_mc_rtt_5ms`).
    """
    name = config["dataset_models"].get(name, {}).get(dataset, name)
    match = MODEL_NAME.match(name)
    if match is None or match["base"] not in MODELS:
        raise ValueError(
            f"config: models: no model named '{name}' (known: {sorted(MODELS)},"
            " each optionally with -L<k> setting latent_size to k >= 1 and -P<n>, pretrained on n full trials)"
        )
    if (
        match["pretrained"] is not None
        and not get_kind(MODELS[match["base"]]["kind"]).gradient_trained
    ):
        raise ValueError(
            f"config: models: '{name}': -P<n> starts from pretrained weights, but a"
            f" {MODELS[match['base']]['kind']} model is not trained by gradient"
        )
    if match["latent"] is None:
        return MODELS[match["base"]]
    latent = {"latent_size": int(match["latent"])}
    return resolve_model(name, {**config["models"][match["base"]], **latent})


def pretrained_weights(wildcards):
    """For `<model>-P<n>` on `<source>_bw<k>`: the model.pt of `<model>` trained with the same seed on
    `<source>_full<n>`, the source's n fully observed trials. Nothing for other runs."""
    match = MODEL_NAME.match(wildcards.model)
    if match is None or match["pretrained"] is None:
        return []
    masked = MASKED_DATASET.match(wildcards.dataset)
    if masked is None:
        raise ValueError(
            f"config: model '{wildcards.model}': -P<n> adapts pretrained dynamics to a masked dataset"
            f" <dataset>_bw<k>, not '{wildcards.dataset}'"
        )
    pretrained_model = wildcards.model[: match.start("pretrained") - 2]
    pretraining_data = f"{masked['source']}_full{match['pretrained']}"
    return f"{run_dir(pretraining_data, pretrained_model, wildcards.seed)}/model.pt"


def json_arg(value):
    """A JSON string quoted for the shell."""
    return shlex.quote(json.dumps(value))


def train_resource(name, dataset, key):
    """A training job's cluster resource: the model's config, else its kind's default."""
    params = model_params(name, dataset)
    return params.get("resources", {}).get(key, get_kind(params["kind"]).resources[key])


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


def sbtt_datasets():
    """The SBTT study's masked datasets, <dataset>_bw<bandwidth> (mask_bandwidth makes them)."""
    study = config.get("sbtt_study")
    if not study:
        return []
    return [
        f"{dataset}_bw{bandwidth}"
        for dataset in study["datasets"]
        for bandwidth in study["dataset_bandwidths"].get(dataset, study["bandwidths"])
    ]


def sbtt_runs():
    study = config.get("sbtt_study")
    if not study:
        return []
    return [
        run_dir(dataset, model, seed)
        for dataset in sbtt_datasets()
        for model in study["models"]
        for seed in study["seeds"]
    ]


def sbtt_pretraining_runs():
    """SBTT from scratch and adapted from n pretrained full trials (<model>-P<n>), per bandwidth and seed."""
    study = config.get("sbtt_pretraining_study")
    if not study:
        return []
    models = [study["model"], *(f"{study['model']}-P{n}" for n in study["full_trials"])]
    return [
        run_dir(f"{study['dataset']}_bw{bandwidth}", model, seed)
        for bandwidth in study["bandwidths"]
        for model in models
        for seed in study["seeds"]
    ]


def two_photon_runs():
    study = config.get("two_photon_study")
    if not study:
        return []
    return [
        run_dir(f"two_photon_{resolution}", model, seed)
        for resolution in study["resolutions"]
        for model in study["models"]
        for seed in study["seeds"]
    ]


def trajectory_runs(system):
    """Runs drawn in the trajectory and eigenvalue figures: first seed, chosen latent sizes."""
    study = config["attractor_study"]
    return [
        run_dir(system, f"{m}-L{k}", study["seeds"][0])
        for m in study["models"]
        for k in study["trajectory_latent_sizes"]
    ]


ATTRACTOR_FIGURES = {
    "fig1c_nll": "nll",
    "fig2a_rate_r2": "rate_r2",
    "fig2c_state_r2": "state_r2",
}


# SBTT bandwidth figures: name -> metrics drawn against the dropped fraction. Rate R² needs ground-truth
# rates (simulated datasets); co-bps and vel R² need held-out units and behaviour (binned NWB,
# <dataset>_<bin>ms). The simulated reaching task has both.
SBTT_FIGURES = {
    "sbtt_rate_r2_vs_bandwidth": ["rate_r2"],
    "sbtt_nlb_vs_bandwidth": ["co-bps", "vel R2"],
}


def sbtt_figures():
    datasets = (config.get("sbtt_study") or {}).get("datasets", [])
    recorded = [*config["nlb_sources"], *config["user_datasets"]]
    wanted = {
        "sbtt_rate_r2_vs_bandwidth": any(
            re.sub(r"_[0-9]+ms$", "", d) not in recorded for d in datasets
        ),
        "sbtt_nlb_vs_bandwidth": any(re.search(r"_[0-9]+ms$", d) for d in datasets),
    }
    return [name for name, on in wanted.items() if on]


def synthetic_runs():
    """Models compared on synthetic binned datasets with true rates (NDT vs LFADS vs smoothing)."""
    study = config.get("synthetic_study")
    if not study:
        return []
    return [
        run_dir(dataset, model, seed)
        for dataset in study["datasets"]
        for model in study["models"]
        for seed in study["seeds"]
    ]


STUDY_RUNS = {
    "attractor_study": attractor_runs,
    "synthetic_study": synthetic_runs,
    "nlb_study": nlb_runs,
    "sbtt_study": sbtt_runs,
    "sbtt_pretraining_study": sbtt_pretraining_runs,
    "two_photon_study": two_photon_runs,
}


def studies_with_runs():
    """Studies that are on (not null) and name at least one run; only they have tables and figures."""
    return [study for study, runs in STUDY_RUNS.items() if runs()]


def nlb_run_figures():
    """Per-run figures of the NLB study's first seed: training curves of gradient-trained kinds and, for
    LFADS, factors, rates against the truth (simulated datasets) and inferred inputs (co_dim > 0).
    """
    study = config.get("nlb_study")
    if not study or not study["seeds"]:
        return []
    targets = []
    for dataset in nlb_binned_names():
        simulated = re.sub(r"_[0-9]+ms$", "", dataset) in SIMULATED_NWB
        for model in study["models"]:
            params = model_params(model, dataset)
            lfads = params["kind"] == "lfads"
            figures = {
                "training_curves": get_kind(params["kind"]).gradient_trained,
                "lfads_factors": lfads,
                "lfads_rates": lfads and simulated,
                "lfads_inputs": lfads and params.get("co_dim", 0) > 0,
            }
            targets += [
                f"results/figures/{figure}_{dataset}_{model}.png"
                for figure, wanted in figures.items()
                if wanted
            ]
    return targets


def latency_models():
    """The latency study's models (config name -> params, defaults filled); none when it is off."""
    study = config.get("latency_study") or {}
    return {name: MODELS[name] for name in study.get("models", [])}


def latency_settings():
    """How the latency study times: its section without the model list and the job's GPUs."""
    study = config["latency_study"]
    return {key: value for key, value in study.items() if key not in ("models", "gpu")}


def all_targets():
    targets = []
    if "attractor_study" in studies_with_runs():
        targets.append("results/tables/attractor_study.csv")
        targets += expand("results/figures/{name}.png", name=ATTRACTOR_FIGURES)
        for system in config["attractor_study"]["systems"]:
            targets += [
                f"results/figures/fig1a_example_data_{system}.png",
                f"results/figures/fig3a_latent_trajectories_{system}.png",
                f"results/figures/fig3b_fixed_point_eigenvalues_{system}.png",
            ]
    if "nlb_study" in studies_with_runs():
        targets += ["results/tables/nlb_study.csv", "results/figures/nlb_metrics.png"]
        targets += nlb_run_figures()
    if "sbtt_study" in studies_with_runs():
        targets.append("results/tables/sbtt_study.csv")
        targets += expand("results/figures/{name}.png", name=sbtt_figures())
    if "sbtt_pretraining_study" in studies_with_runs():
        targets += [
            "results/tables/sbtt_pretraining_study.csv",
            "results/figures/sbtt_pretraining.png",
        ]
    if "synthetic_study" in studies_with_runs():
        targets += [
            "results/tables/synthetic_study.csv",
            "results/figures/synthetic_rate_r2.png",
        ]
    if "two_photon_study" in studies_with_runs():
        targets += [
            "results/tables/two_photon_study.csv",
            "results/figures/sbtt_two_photon.png",
        ]
    if latency_models():  # no runs: timed models are built, not trained
        targets.append("results/figures/ndt_latency.png")
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
        return f"--nwb {shlex.quote(input.nwb)} --truth {shlex.quote(input.truth)} --spec mc_maze"
    if name in config["user_datasets"]:
        spec = {k: v for k, v in config["user_datasets"][name].items() if k != "nwb"}
        spec["bin_ms"] = [int(wildcards.bin_ms)]
        return f"--nwb {shlex.join(input.nwb)} --spec-json {json_arg(spec)}"
    return f"--manifest {shlex.quote(input.manifest)}"


def test_targets_argument(wildcards):
    """In the NLB test phase, score against the public test-split ground truth when configured."""
    study = config.get("nlb_study") or {}
    if study.get("phase") != "test" or not study.get("test_targets"):
        return ""
    if re.sub(r"_[0-9]+ms$", "", wildcards.dataset) not in config["nlb_sources"]:
        return ""
    return f"--test-targets {shlex.quote(study['test_targets'])}"
