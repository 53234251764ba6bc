# Input functions of the figure rules (figures.smk).


def trajectory_runs(system):
    """Runs drawn in the trajectory and eigenvalue figures: first seed, chosen latent sizes."""
    study = config["attractor_study"]
    return [
        run_dir(system, f"{m}-L{k}", study["seeds"][0])
        for m in study["models"]
        for k in study["trajectory_latent_sizes"]
    ]


def model_colours(study):
    """JSON of `study`'s models -> their kinds' colours, for figures comparing models."""
    return json_arg(
        {
            name: get_kind(MODELS[name]["kind"]).colour
            for name in config[study]["models"]
        }
    )


def simulated_nlb_datasets():
    """The NLB study's binned datasets that were simulated, for the figure to label them so."""
    return [d for d in nlb_binned_names(config["nlb_study"]) if is_simulated(d)]


def run_figure_inputs(wildcards):
    """The run's output.h5 and, for figures that read it, its binned dataset."""
    run = run_dir(wildcards.dataset, wildcards.model, config["nlb_study"]["seeds"][0])
    inputs = {"output": f"{run}/output.h5"}
    _, reads_data = RUN_FIGURES[wildcards.figure]
    if reads_data:
        inputs["data"] = f"results/data/binned/{wildcards.dataset}.h5"
    return inputs


def run_figure_arguments(wildcards, input):
    """plot_figure.py's subcommand and input arguments for a per-run figure."""
    subcommand, reads_data = RUN_FIGURES[wildcards.figure]
    data = f" --data {shlex.quote(input.data)}" if reads_data else ""
    return f"{subcommand}{data} --output {shlex.quote(input.output)}"


def history_runs(study):
    """The runs of `study` whose models are trained by gradient, so that a history.csv (one row per
    epoch) lies beside their output."""
    runs = []
    for run in study_runs(study):
        _, _, dataset, model, _ = run.split("/")
        if get_kind(model_params(model, dataset)["kind"]).gradient_trained:
            runs.append(run)
    return runs
