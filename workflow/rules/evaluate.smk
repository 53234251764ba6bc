# Score each run and gather the scores into one table per study.


include: "evaluate_helpers.smk"


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
        "python {params.script:q} --data {input.data:q} --output {input.output:q}"
        " {params.test_targets} --out {output:q} > {log:q} 2>&1"


localrules:
    collect_metrics,
    render_table,


rule collect_metrics:
    input:
        lambda wildcards: [f"{run}/metrics.json" for run in study_runs(wildcards.study)],
    output:
        report(
            "results/tables/{study}.csv",
            category="Tables",
            caption="../report/metrics_table.rst",
        ),
    log:
        "results/logs/collect_metrics/{study}.log",
    wildcard_constraints:
        study="|".join(studies_with_runs()) or "^$",
    conda:
        "../../envs/evaluate.yaml"
    params:
        script=f"{SCRIPTS}/collect_metrics.py",
    shell:
        "python {params.script:q} --out {output:q} {input:q} > {log:q} 2>&1"


# Each result table as a page the report shows inline: glossary and units, rounded rows, mean ± s.d. and
# n over seeds (latentdyn.plots.tables); the CSV beside it keeps full precision.
rule render_table:
    input:
        "results/tables/{table}.csv",
    output:
        report(
            "results/tables/{table}.html",
            category="Tables",
            caption="../report/table.rst",
        ),
    log:
        "results/logs/render_table/{table}.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        script=f"{SCRIPTS}/render_table.py",
    shell:
        "python {params.script:q} --table {input:q} --title {wildcards.table:q} --out {output:q}"
        " > {log:q} 2>&1"
