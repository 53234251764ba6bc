# Resources and arguments of the training and prediction rules (train.smk).

# Both jobs of a run get its model's cluster resources (models.<name>.resources, else its kind's).
RUN_RESOURCES = {
    key: lambda wildcards, key=key: train_resource(
        wildcards.model, wildcards.dataset, key
    )
    for key in ("gpu", "mem_mb", "runtime")
}


def training_params(name, dataset):
    """model_params without the settings that change predictions but not the trained weights."""
    params = model_params(name, dataset)
    prediction_only = get_kind(params["kind"]).prediction_only
    return {key: value for key, value in params.items() if key not in prediction_only}


def init_argument(pretrained):
    """The --init-from argument of a run that starts from pretrained weights; empty for any other."""
    return f"--init-from {shlex.quote(pretrained)}" if pretrained else ""
