# Synthetic datasets with ground truth. Quick, so they run on the submitting host.


localrules:
    simulate_attractor,
    simulate_reaching,


rule simulate_attractor:
    output:
        "results/data/binned/{system}.h5",
    log:
        "results/logs/simulate_attractor/{system}.log",
    wildcard_constraints:
        system="|".join(ATTRACTOR_SYSTEMS),
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_attractor.py",
        settings=lambda wildcards: json_arg(config["attractors"]),
    shell:
        "python {params.script:q} --system {wildcards.system}"
        " --settings {params.settings} --out {output:q} > {log:q} 2>&1"


rule simulate_reaching:
    output:
        nwb="results/data/nwb/reaching/reaching.nwb",
        truth="results/data/nwb/reaching/reaching_truth.h5",
    log:
        "results/logs/simulate_reaching.log",
    conda:
        "../../envs/data.yaml"
    params:
        script=f"{SCRIPTS}/simulate_reaching.py",
        settings=json_arg(config["reaching"]),
    shell:
        "python {params.script:q} --params-json {params.settings}"
        " --out {output.nwb:q} --truth {output.truth:q} > {log:q} 2>&1"
