# NWB recordings -> binned tensors with the benchmark's definitions (latentdyn.data.nlb).


def nwb_inputs(wildcards):
    """What the binning of `dataset` reads: a download manifest, or a simulated NWB and its truth."""
    if wildcards.dataset in SIMULATED_NWB:
        return {
            "nwb": f"results/data/nwb/{wildcards.dataset}/{wildcards.dataset}.nwb",
            "truth": f"results/data/nwb/{wildcards.dataset}/{wildcards.dataset}_truth.h5",
        }
    return {"manifest": f"results/data/nwb/{wildcards.dataset}/manifest.json"}


def nwb_arguments(wildcards, input):
    if "manifest" in input.keys():
        return f"--manifest {input.manifest}"
    return f"--nwb {input.nwb} --truth {input.truth} --spec mc_maze"


rule bin_nwb:
    input:
        unpack(nwb_inputs),
    output:
        "results/data/binned/{dataset}_{bin_ms}ms.h5",
    params:
        nwb=nwb_arguments,
        phase=config["nlb_study"]["phase"] if config.get("nlb_study") else "val",
    resources:
        mem_mb=16000,
        runtime=60,
    log:
        "results/logs/bin_nwb/{dataset}_{bin_ms}ms.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {SCRIPTS}/bin_nwb.py {params.nwb} --dataset {wildcards.dataset}"
        " --bin-ms {wildcards.bin_ms} --phase {params.phase} --out {output} > {log} 2>&1"
