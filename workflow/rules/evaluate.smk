# Score each run and gather the scores into one table per study.


rule evaluate:
    input:
        data="results/data/binned/{dataset}.h5",
        output="results/runs/{dataset}/{model}/seed{seed}/output.h5",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/metrics.json",
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "results/logs/evaluate/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "python {SCRIPTS}/evaluate.py --data {input.data} --output {input.output}"
        " --out {output} > {log} 2>&1"


rule collect_metrics:
    input:
        lambda wildcards: [
            f"{run}/metrics.json"
            for run in {"attractor_study": attractor_runs, "nlb_study": nlb_runs}[
                wildcards.study
            ]()
        ],
    output:
        report(
            "results/tables/{study}.csv",
            category="Tables",
            caption="../report/metrics_table.rst",
        ),
    wildcard_constraints:
        study="attractor_study|nlb_study",
    log:
        "results/logs/collect_metrics/{study}.log",
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "python {SCRIPTS}/collect_metrics.py --out {output} {input} > {log} 2>&1"
