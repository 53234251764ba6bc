# Input functions of the binning rule (bin.smk).


def simulated_nwb(name):
    """The NWB file and truth sidecar of simulated dataset `name` (a session of the simulated multisession
    set included), or None."""
    if name in SIMULATED_NWB:
        folder = name
    elif SESSION_OF.get(name, ("",))[0] == SIMULATED_MULTISESSION:
        folder = SIMULATED_MULTISESSION
    else:
        return None
    return {
        "nwb": f"results/data/nwb/{folder}/{name}.nwb",
        "truth": f"results/data/nwb/{folder}/{name}_truth.h5",
    }


def user_source(name):
    """(user dataset config, its NWB files) of `name`: a user dataset, or one session of a user's
    multisession dataset; None otherwise."""
    if name in config["user_datasets"]:
        return config["user_datasets"][name], config["user_datasets"][name]["nwb"]
    if name in SESSION_OF and SESSION_OF[name][0] in config["user_datasets"]:
        source, index = SESSION_OF[name]
        dataset = config["user_datasets"][source]
        return dataset, [dataset["sessions"][index]]
    return None


def nwb_inputs(wildcards):
    """What binning `dataset` reads: a simulated NWB and its truth, a user's NWB files, or a download."""
    name = wildcards.dataset
    simulated = simulated_nwb(name)
    if simulated:
        return simulated
    user = user_source(name)
    if user:
        return {"nwb": user[1]}
    if name in config["nlb_sources"]:
        return {"manifest": f"results/data/nwb/{name}/manifest.json"}
    raise ValueError(
        f"config: nlb_study.datasets: '{name}' is neither an NLB source, a user dataset nor simulated"
    )


def nwb_arguments(wildcards, input):
    """bin_nwb.py's source and spec arguments for `dataset`."""
    name = wildcards.dataset
    if simulated_nwb(name):
        return f"--nwb {shlex.quote(input.nwb)} --truth {shlex.quote(input.truth)} --spec mc_maze"
    user = user_source(name)
    if user:
        spec = {k: v for k, v in user[0].items() if k not in ("nwb", "sessions")}
        spec["bin_ms"] = [int(wildcards.bin_ms)]
        return f"--nwb {shlex.join(input.nwb)} --spec-json {json_arg(spec)}"
    return f"--manifest {shlex.quote(input.manifest)}"
