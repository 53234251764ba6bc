# Resources and arguments of the training and prediction rules (train.smk).

# Both jobs of a run get its model's cluster resources (models.<name>.resources, else its kind's).
RUN_RESOURCES = {
    key: lambda wildcards, key=key: train_resource(
        wildcards.model, wildcards.dataset, key
    )
    for key in ("gpu", "mem_mb", "runtime")
}


def train_threads(wildcards):
    """The job's CPUs: the model's resources.cpus, else its kind's, else the config's threads."""
    return train_resource(wildcards.model, wildcards.dataset, "cpus")


def cluster_launcher(wildcards):
    """What the training command runs under: scripts/ray_slurm.sh for a kind that drives Ray (it starts
    a Ray cluster across the job's Slurm allocation, and under no Slurm just runs the command).
    """
    kind = get_kind(model_params(wildcards.model, wildcards.dataset)["kind"])
    if "ray_cluster" not in kind.capabilities:
        return ""
    return f"bash {shlex.quote(f'{SCRIPTS}/ray_slurm.sh')} "


def run_arguments(wildcards, step):
    """The arguments scripts/run_model.py `step` ("train" or "predict") shares, shell-quoted. Training
    gets the model's settings without those that change predictions but not the trained weights
    (the kind's prediction_only), so changing those reruns the prediction alone.

    From the wildcards only, never from `input`: Snakemake's params trigger ignores a params function
    that takes `input`, and a changed setting must rerun the job."""
    params = model_params(wildcards.model, wildcards.dataset)
    if step == "train":
        params = training_params(params)
    data = f"results/data/binned/{wildcards.dataset}.h5"
    arguments = [
        "--data",
        data,
        "--model-name",
        wildcards.model,
        "--model",
        json.dumps(params),
    ]
    arguments += ["--seed", wildcards.seed, "--device", config["device"]]
    pretrained = pretrained_weights(wildcards)
    if pretrained:
        arguments += ["--init-from", pretrained]
    return shlex.join(arguments)


def training_params(params):
    """A model's settings without those that change predictions but not the trained weights."""
    prediction_only = get_kind(params["kind"]).prediction_only
    return {key: value for key, value in params.items() if key not in prediction_only}


def attractor_stacks():
    """The attractor study's runs trained as stacks (training/stacked.py): model name -> its runs
    (dataset, seed), every system and seed of one generator and latent size, when the model's kind
    trains in stacks and its settings are the same on every system. The systems' datasets share one
    shape (attractors: n_neurons, n_steps, split)."""
    study = config.get("attractor_study")
    if not study or not study["systems"] or not study["seeds"]:
        return {}
    stacks = {}
    for model in attractor_model_names(study):
        settings = [model_params(model, system) for system in study["systems"]]
        if get_kind(settings[0]["kind"]).stacks(settings[0]) and settings.count(
            settings[0]
        ) == len(settings):
            stacks[model] = [
                (system, seed) for system in study["systems"] for seed in study["seeds"]
            ]
    return stacks


STACKS = attractor_stacks()
# A stack job's resources: one member's (as RUN_RESOURCES) plus the kind's per-member extra.
STACK_RESOURCES = {
    key: lambda wildcards, key=key: stack_resources(wildcards.model)[key]
    for key in ("gpu", "mem_mb", "runtime")
}


def stack_resources(model):
    dataset = STACKS[model][0][0]
    member = {
        key: train_resource(model, dataset, key) for key in ("gpu", "mem_mb", "runtime")
    }
    kind = get_kind(model_params(model, dataset)["kind"])
    return kind.stack_resources(member, len(STACKS[model]))


def stack_arguments(wildcards):
    """scripts/run_model.py train-stack's arguments, shell-quoted: the model's training settings and,
    per run, its dataset, seed and model.pt. From the wildcards only (see run_arguments).
    """
    model = wildcards.model
    params = training_params(model_params(model, STACKS[model][0][0]))
    arguments = ["--model-name", model, "--model", json.dumps(params)]
    arguments += ["--device", config["device"]]
    for dataset, seed in STACKS[model]:
        arguments += ["--member", f"results/data/binned/{dataset}.h5", str(seed)]
        arguments.append(f"{run_dir(dataset, model, seed)}/model.pt")
    return shlex.join(arguments)
