# Score each run and gather the scores into one table per study.


rule evaluate:
    input:
        data="results/data/binned/{dataset}.h5",
        output="results/runs/{dataset}/{model}/seed{seed}/output.h5",
    output:
        "results/runs/{dataset}/{model}/seed{seed}/metrics.json",
    log:
        "results/logs/evaluate/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        script=f"{SCRIPTS}/evaluate.py",
        test_targets=test_targets_argument,
    shell:
        "python {params.script} --data {input.data} --output {input.output}"
        " {params.test_targets} --out {output} > {log} 2>&1"


localrules:
    collect_metrics,


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
    log:
        "results/logs/collect_metrics/{study}.log",
    wildcard_constraints:
        study="attractor_study|nlb_study",
    conda:
        "../../envs/evaluate.yaml"
    params:
        script=f"{SCRIPTS}/collect_metrics.py",
    shell:
        "python {params.script} --out {output} {input} > {log} 2>&1"
