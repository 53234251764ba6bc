# NWB recordings -> binned tensors with the benchmark's definitions (latentdyn.data.nlb).


include: "bin_helpers.smk"


rule bin_nwb:
    input:
        unpack(nwb_inputs),
    output:
        "results/data/binned/{dataset}_{bin_ms}ms.h5",
    log:
        "results/logs/bin_nwb/{dataset}_{bin_ms}ms.log",
    wildcard_constraints:
        dataset=BINNED_FROM_NWB,
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        script=f"{SCRIPTS}/bin_nwb.py",
        nwb=nwb_arguments,
        phase=config["nlb_study"]["phase"] if config.get("nlb_study") else "val",
    shell:
        "python {params.script:q} {params.nwb} --dataset {wildcards.dataset}"
        " --bin-ms {wildcards.bin_ms} --phase {params.phase} --out {output:q} > {log:q} 2>&1"
