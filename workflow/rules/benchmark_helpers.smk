# Input functions of the latency rule (benchmark.smk).


def latency_settings():
    """How the latency study times: its section without the model list and the job's GPUs."""
    study = config["latency_study"]
    return {key: value for key, value in study.items() if key not in ("models", "gpu")}
