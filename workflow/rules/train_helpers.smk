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
        prediction_only = get_kind(params["kind"]).prediction_only
        params = {
            key: value for key, value in params.items() if key not in prediction_only
        }
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
