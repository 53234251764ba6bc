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
    nlb_submission,


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


# The NLB submission: one HDF5 in the benchmark's layout with every NLB-study dataset's rates from its best
# run (highest co-bps in the study's table: the val split in the val phase), checked for the leaderboard's
# groups, keys and shapes, and scored again from the file itself (metrics/submission.py).
rule nlb_submission:
    input:
        table="results/tables/nlb_study.csv",
        data=lambda wildcards: expand(
            "results/data/binned/{dataset}.h5",
            dataset=nlb_binned_names(config["nlb_study"]),
        ),
        outputs=lambda wildcards: [
            f"{run}/output.h5" for run in study_runs("nlb_study")
        ],
    output:
        h5="results/nlb/submission.h5",
        summary="results/tables/nlb_submission.csv",
    log:
        "results/logs/nlb_submission.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        script=f"{SCRIPTS}/make_submission.py",
        # the NLB datasets' groups of the test targets file score them (simulated ones are not in it)
        test_targets=lambda wildcards: (
            f"--test-targets {shlex.quote(test_targets_file())}"
            if test_targets_file()
            else ""
        ),
    shell:
        "python {params.script:q} --table {input.table:q} --data {input.data:q}"
        " --runs results/runs {params.test_targets} --out {output.h5:q}"
        " --summary {output.summary:q} > {log:q} 2>&1"
