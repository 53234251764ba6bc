# Generative models (capability code_generation: GNOCCHI, LFADS) on datasets with whole conditions withheld
# from training (<dataset>_unseen, rule withhold_conditions): their codes' disentanglement, trials generated
# for the withheld conditions, realism of generated spikes (latentdyn.metrics.generation). The runs
# themselves are ordinary runs (train.smk) and are scored as every run (evaluate.smk:
# results/tables/generative_study.csv).


localrules:
    figure_generative,


rule generative_study:
    input:
        data=lambda wildcards: [
            f"results/data/binned/{d}_unseen.h5" for d in generative_sources()
        ],
        outputs=lambda wildcards: [
            f"{run}/output.h5" for run in study_runs("generative_study")
        ],
        models=lambda wildcards: [
            f"{run}/model.pt" for run in study_runs("generative_study")
        ],
    output:
        tables=[
            report(
                f"results/tables/generative_{table}.csv",
                category="Generative models",
                caption="../report/generative_tables.rst",
            )
            for table in GENERATIVE_TABLES
        ],
        figure_data=expand(
            "results/generative/{dataset}_unseen.h5", dataset=generative_sources()
        ),
    log:
        "results/logs/generative_study.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        script=f"{SCRIPTS}/generative_study.py",
    shell:
        "python {params.script:q} --data {input.data:q} --outputs {input.outputs:q}"
        " --disentanglement {output.tables[0]:q} --unseen {output.tables[1]:q}"
        " --realism {output.tables[2]:q} --figure-data {output.figure_data:q} > {log:q} 2>&1"


rule figure_generative:
    input:
        "results/generative/{dataset}.h5",
    output:
        png=report(
            "results/figures/generative_{dataset}.png",
            category="Generative models",
            caption="../report/generative.rst",
        ),
        pdf="results/figures/generative_{dataset}.pdf",
    log:
        "results/logs/figures/generative_{dataset}.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("generative_study"),
    shell:
        "python {params.script:q} generative --figure-data {input:q} --colours {params.colours}"
        " --out {output.png:q} > {log:q} 2>&1"
