# Input functions of the multisession rules (multisession.smk).


def session_of_dataset(dataset):
    """(multisession dataset, session index, bin size) of a session's binned dataset <session>_<bin>ms."""
    session, bin_ms = re.fullmatch(r"(.+)_([0-9]+)ms", dataset).groups()
    return (*SESSION_OF[session], bin_ms)


def stitched_run(wildcards):
    """The stitched dataset and run that session dataset `dataset` (<session>_<bin>ms) is part of, and the
    session's own binned dataset."""
    source, _, bin_ms = session_of_dataset(wildcards.dataset)
    return {
        "stitched": f"results/data/binned/{source}_{bin_ms}ms.h5",
        "output": f"{run_dir(f'{source}_{bin_ms}ms', wildcards.model, wildcards.seed)}/output.h5",
        "session": f"results/data/binned/{wildcards.dataset}.h5",
    }


def decoding_inputs(wildcards):
    """What scoring stitched run <dataset>/<model>/seed<seed> per session reads: the stitched dataset and
    output, and each session's binned dataset and part of the run (<model>-S), in session order.
    """
    source, bin_ms = re.fullmatch(r"(.+)_([0-9]+)ms", wildcards.dataset).groups()
    sessions = [f"{session}_{bin_ms}ms" for session in MULTISESSION[source]]
    return {
        "stitched": f"results/data/binned/{wildcards.dataset}.h5",
        "stitched_output": f"{run_dir(wildcards.dataset, wildcards.model, wildcards.seed)}/output.h5",
        "sessions": [f"results/data/binned/{session}.h5" for session in sessions],
        "session_outputs": [
            f"{run_dir(session, f'{wildcards.model}-S', wildcards.seed)}/output.h5"
            for session in sessions
        ],
    }


def multisession_decoding_tables():
    """Every stitched run's decoding.csv of the multisession study."""
    study = config.get("multisession_study") or {}
    return [
        f"{run_dir(f'{dataset}_{b}ms', model, seed)}/decoding.csv"
        for dataset in study.get("datasets", [])
        for b in study.get("bin_sizes_ms", [])
        for model in study.get("models", [])
        for seed in study.get("seeds", [])
    ]


def multisession_factor_figures():
    """The shared-factors figure of every stitched dataset and model of the study, for its first seed."""
    study = config.get("multisession_study") or {}
    return [
        f"results/figures/multisession_factors_{dataset}_{b}ms_{model}_seed{study['seeds'][0]}.png"
        for dataset in study.get("datasets", [])
        for b in study.get("bin_sizes_ms", [])
        for model in study.get("models", [])
    ]


def multisession_study_sessions():
    """Session dataset (<session>_<bin>ms) -> its multisession set and bin size, '<set> <bin> ms', for
    every session of the study, in session order."""
    study = config.get("multisession_study") or {}
    return {
        f"{session}_{b}ms": f"{dataset} {b} ms"
        for dataset in study.get("datasets", [])
        for b in study.get("bin_sizes_ms", [])
        for session in MULTISESSION[dataset]
    }
