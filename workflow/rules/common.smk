# Helpers shared by every stage: model lookup, run paths and the target lists built from config.
import json
import re
import shlex
from operator import itemgetter

from latentdyn.models.kinds import get_kind, latency_kinds, resolve_model

SCRIPTS = f"{workflow.basedir}/scripts"
# <model>[-L<k>][-P<n>][-S]: -L<k> sets the latent size to k; -P<n> starts from <model>[-L<k>] pretrained on n
# fully observed trials (SBTT experiment 4, pretrained_weights below); -S is one session's part of <model>
# trained on all sessions of a multisession dataset (multisession.smk).
MODEL_NAME = re.compile(
    r"^(?P<base>[a-z][a-z0-9_]*)(?:-L(?P<latent>[1-9][0-9]*))?(?:-P(?P<pretrained>[1-9][0-9]*))?(?P<stitched>-S)?$"
)
MASKED_DATASET = re.compile(r"^(?P<source>[a-z0-9_]+)_bw[0-9]+$")
# the simulated reaching task
SIMULATED_NWB = ["reaching"]
SIMULATED_MULTISESSION = "reaching_ms"


def multisession_datasets():
    """Multisession dataset -> its sessions' dataset names in session order: <name>_s<ss> of the
    simulated reaching_ms and of every user dataset given as `sessions`; the NLB datasets themselves of
    an `nlb_multisession` entry."""
    counts = {SIMULATED_MULTISESSION: config["multisession_reaching"]["n_sessions"]}
    counts.update(
        {
            name: len(dataset["sessions"])
            for name, dataset in config["user_datasets"].items()
            if "sessions" in dataset
        }
    )
    named = {name: [f"{name}_s{s:02d}" for s in range(n)] for name, n in counts.items()}
    return {**named, **config["nlb_multisession"]}


MULTISESSION = multisession_datasets()
SESSION_OF = {
    session: (name, index)
    for name, sessions in MULTISESSION.items()
    for index, session in enumerate(sessions)
}
# A user's session given as a binned file (a `sessions` entry ending .h5) -> that file, which
# take_binned_session checks and takes as it is instead of binning an NWB file.
BINNED_SESSIONS = {
    session: path
    for name, dataset in config["user_datasets"].items()
    for session, path in zip(MULTISESSION.get(name, []), dataset.get("sessions", []))
    if path.endswith(".h5")
}
# Dataset names binned from NWB (bin_nwb): any but a multisession dataset's own, whose binned file
# <name>_<bin>ms.h5 stitch_sessions makes from its sessions', and a session given binned (the
# lookahead sees the rest of the path).
BINNED_FROM_NWB = r"(?!(?:%s)_[0-9]+ms\.h5$)[a-z0-9_]+" % "|".join(
    [*MULTISESSION, *BINNED_SESSIONS]
)
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


# Resources a kind.yaml may leave out, and their values then; `cpus` falls back on the config's threads.
OPTIONAL_RESOURCES = {"nodes": 1}


def train_resource(name, dataset, key):
    """A training job's cluster resource: the model's config, else its kind's default (several nodes
    only for a ray_cluster kind: config.py checks it before any job)."""
    params = model_params(name, dataset)
    kind = get_kind(params["kind"])
    defaults = {**OPTIONAL_RESOURCES, "cpus": config["threads"], **kind.resources}
    return params.get("resources", {}).get(key, defaults[key])


def run_dir(dataset, model, seed):
    return f"results/runs/{dataset}/{model}/seed{seed}"


def attractor_model_names(study):
    return [f"{m}-L{k}" for m in study["models"] for k in study["latent_sizes"]]


def nlb_binned_names(study):
    return [f"{d}_{b}ms" for d in study["datasets"] for b in study["bin_sizes_ms"]]


def sbtt_datasets(study):
    """The SBTT study's masked datasets, <dataset>_bw<bandwidth> (mask_bandwidth makes them)."""
    return [
        f"{dataset}_bw{bandwidth}"
        for dataset in study["datasets"]
        for bandwidth in study["dataset_bandwidths"].get(dataset, study["bandwidths"])
    ]


def pretraining_models(study):
    """SBTT from scratch and adapted from n pretrained full trials (<model>-P<n>)."""
    return [study["model"], *(f"{study['model']}-P{n}" for n in study["full_trials"])]


def trial_count_datasets(study):
    """<dataset>_full<n>: n training trials of each dataset (keep_full_trials), for every trial count."""
    return [f"{d}_full{n}" for d in study["datasets"] for n in study["trial_counts"]]


# Each study's runs are every dataset x model x seed: its datasets and its models, from its config section.
STUDY_DESIGNS = {
    "attractor_study": (itemgetter("systems"), attractor_model_names),
    "synthetic_study": (itemgetter("datasets"), itemgetter("models")),
    "nlb_study": (nlb_binned_names, itemgetter("models")),
    "sbtt_study": (sbtt_datasets, itemgetter("models")),
    "sbtt_pretraining_study": (
        lambda study: [f"{study['dataset']}_bw{b}" for b in study["bandwidths"]],
        pretraining_models,
    ),
    "multisession_study": (
        lambda study: [
            f"{session}_{b}ms"
            for d in study["datasets"]
            for session in MULTISESSION[d]
            for b in study["bin_sizes_ms"]
        ],
        lambda study: [*study["models"], *(f"{m}-S" for m in study["models"])],
    ),
    "two_photon_study": (
        lambda study: [
            f"two_photon_{resolution}" for resolution in study["resolutions"]
        ],
        itemgetter("models"),
    ),
    "small_data_study": (trial_count_datasets, itemgetter("models")),
    "cd_study": (trial_count_datasets, itemgetter("models")),
    "generative_study": (
        lambda study: [f"{d}_unseen" for d in study["datasets"]],
        itemgetter("models"),
    ),
}


# the generative study's tables besides its metrics table: results/tables/generative_<table>.csv
GENERATIVE_TABLES = ["disentanglement", "unseen", "realism"]


def generative_sources():
    """The binned datasets the generative study withholds conditions from (runs on <dataset>_unseen)."""
    return (config.get("generative_study") or {}).get("datasets", [])


def study_runs(name):
    """The run directories of study `name`; none when it is off (null or absent)."""
    study = config.get(name)
    if not study:
        return []
    datasets, models = STUDY_DESIGNS[name]
    return [
        run_dir(dataset, model, seed)
        for dataset in datasets(study)
        for model in models(study)
        for seed in study["seeds"]
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


def studies_with_runs():
    """Studies that are on (not null) and name at least one run; only they have tables and figures."""
    return [study for study in STUDY_DESIGNS if study_runs(study)]


# Per-run figures a kind may offer (kind.yaml `figures`): figure -> (plot_figure.py subcommand, whether it
# reads the run's binned dataset).
RUN_FIGURES = {
    "training_curves": ("training-curves", False),
    "lfads_factors": ("factors", True),
    "lfads_rates": ("rates-vs-truth", True),
    "lfads_inputs": ("inferred-inputs", True),
    "population_search": ("population-search", False),
}


def is_simulated(dataset):
    """Whether binned NLB-style `dataset` (<name>_<bin>ms) was simulated, not recorded."""
    return re.sub(r"_[0-9]+ms$", "", dataset) in SIMULATED_NWB


def nlb_run_figures():
    """Per-run figures of the NLB study's first seed: those each model's kind offers for its params on
    that dataset (true rates: simulated datasets only)."""
    study = config.get("nlb_study")
    if not study or not study["seeds"]:
        return []
    targets = []
    for dataset in nlb_binned_names(study):
        for model in study["models"]:
            params = model_params(model, dataset)
            figures = get_kind(params["kind"]).run_figures(
                params, has_true_rates=is_simulated(dataset)
            )
            unknown = [figure for figure in figures if figure not in RUN_FIGURES]
            if unknown:
                raise ValueError(
                    f"model kind '{params['kind']}': kind.yaml figures {unknown} are not per-run figures"
                    f" the workflow draws ({', '.join(RUN_FIGURES)})"
                )
            targets += [
                f"results/figures/{figure}_{dataset}_{model}.png" for figure in figures
            ]
    return targets


def latency_models():
    """The latency study's models (config name -> params, defaults filled); none when it is off."""
    study = config.get("latency_study") or {}
    return {name: MODELS[name] for name in study.get("models", [])}


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
        targets += [
            "results/tables/nlb_study.csv",
            "results/figures/nlb_metrics.png",
            "results/nlb/submission.h5",
            "results/tables/nlb_submission.csv",
        ]
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
    if "multisession_study" in studies_with_runs():
        targets += [
            "results/tables/multisession_study.csv",
            "results/figures/multisession.png",
            "results/figures/multisession_trials.png",  # planned even where all counts match: see the rule
            *multisession_factor_figures(),
        ]
    if "small_data_study" in studies_with_runs():
        targets += [
            "results/tables/small_data_study.csv",
            "results/figures/small_data.png",
        ]
    if "cd_study" in studies_with_runs():
        targets += ["results/tables/cd_study.csv", "results/figures/cd_validation.png"]
    if "generative_study" in studies_with_runs():
        targets += [
            "results/tables/generative_study.csv",
            *expand("results/tables/generative_{table}.csv", table=GENERATIVE_TABLES),
            *expand(
                "results/figures/generative_{dataset}_unseen.png",
                dataset=generative_sources(),
            ),
        ]
    if latency_models():  # no runs: timed models are built, not trained
        targets += ["results/figures/ndt_latency.png", "results/tables/latency.csv"]
    # every table also as a page the report shows inline (render_table)
    targets += [
        re.sub(r"\.csv$", ".html", t)
        for t in targets
        if t.startswith("results/tables/")
    ]
    return targets
