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
