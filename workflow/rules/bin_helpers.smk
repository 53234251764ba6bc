# Input functions of the binning rule (bin.smk).


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
