# Synthetic datasets with ground truth.


rule simulate_attractor:
    output:
        "results/data/binned/{system}.h5",
    wildcard_constraints:
        system="|".join(ATTRACTOR_SYSTEMS),
    params:
        settings=lambda wildcards: json_arg(config["attractors"]),
    log:
        "results/logs/simulate_attractor/{system}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {SCRIPTS}/simulate_attractor.py --system {wildcards.system}"
        " --settings {params.settings} --out {output} > {log} 2>&1"


rule simulate_reaching:
    output:
        nwb="results/data/nwb/reaching/reaching.nwb",
        truth="results/data/nwb/reaching/reaching_truth.h5",
    params:
        settings=json_arg(config["reaching"]),
    log:
        "results/logs/simulate_reaching.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {SCRIPTS}/simulate_reaching.py --params-json {params.settings}"
        " --out {output.nwb} --truth {output.truth} > {log} 2>&1"
