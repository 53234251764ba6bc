# One rule per paper figure; each writes a PNG (shown in the report) and a PDF beside it.
# Figures are light, so they run on the submitting host.


include: "figures_helpers.smk"


localrules:
    figure_example_data,
    figure_metric_vs_latent,
    figure_latent_trajectories,
    figure_fixed_point_eigenvalues,
    figure_nlb_metrics,
    figure_synthetic_rate_r2,
    figure_latency,


rule figure_example_data:
    input:
        "results/data/binned/{system}.h5",
    output:
        png=report(
            "results/figures/fig1a_example_data_{system}.png",
            category="Sedler et al. 2023",
            subcategory="{system}",
            caption="../report/fig1a.rst",
        ),
        pdf="results/figures/fig1a_example_data_{system}.pdf",
    log:
        "results/logs/figures/fig1a_{system}.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} example-data --data {input:q} --out {output.png:q} > {log:q} 2>&1"


rule figure_metric_vs_latent:
    input:
        "results/tables/attractor_study.csv",
    output:
        png=report(
            "results/figures/{figure}.png",
            category="Sedler et al. 2023",
            subcategory="metrics vs latent size",
            caption="../report/metric_vs_latent.rst",
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(ATTRACTOR_FIGURES),
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        metric=lambda wildcards: ATTRACTOR_FIGURES[wildcards.figure],
    shell:
        "python {params.script:q} metric-vs-latent --table {input:q}"
        " --metric {params.metric} --out {output.png:q} > {log:q} 2>&1"


rule figure_latent_trajectories:
    input:
        data="results/data/binned/{system}.h5",
        outputs=lambda wildcards: [
            f"{r}/output.h5" for r in trajectory_runs(wildcards.system)
        ],
        fixed_points=lambda wildcards: [
            f"{r}/fixed_points.h5" for r in trajectory_runs(wildcards.system)
        ],
    output:
        png=report(
            "results/figures/fig3a_latent_trajectories_{system}.png",
            category="Sedler et al. 2023",
            subcategory="{system}",
            caption="../report/trajectories.rst",
        ),
        pdf="results/figures/fig3a_latent_trajectories_{system}.pdf",
    log:
        "results/logs/figures/trajectories_{system}.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} trajectories --data {input.data:q}"
        " --outputs {input.outputs:q} --fixed-points {input.fixed_points:q}"
        " --out {output.png:q} > {log:q} 2>&1"


rule figure_fixed_point_eigenvalues:
    input:
        data="results/data/binned/{system}.h5",
        outputs=lambda wildcards: [
            f"{r}/output.h5" for r in trajectory_runs(wildcards.system)
        ],
        fixed_points=lambda wildcards: [
            f"{r}/fixed_points.h5" for r in trajectory_runs(wildcards.system)
        ],
    output:
        png=report(
            "results/figures/fig3b_fixed_point_eigenvalues_{system}.png",
            category="Sedler et al. 2023",
            subcategory="{system}",
            caption="../report/eigenvalues.rst",
        ),
        pdf="results/figures/fig3b_fixed_point_eigenvalues_{system}.pdf",
    log:
        "results/logs/figures/eigenvalues_{system}.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} eigenvalues --data {input.data:q}"
        " --outputs {input.outputs:q} --fixed-points {input.fixed_points:q}"
        " --out {output.png:q} > {log:q} 2>&1"


rule figure_nlb_metrics:
    input:
        "results/tables/nlb_study.csv",
    output:
        png=report(
            "results/figures/nlb_metrics.png",
            category="Neural Latents Benchmark",
            subcategory="Summary: every dataset and model",
            caption="../report/nlb_metrics.rst",
        ),
        pdf="results/figures/nlb_metrics.pdf",
    log:
        "results/logs/figures/nlb_metrics.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("nlb_study"),
        simulated=lambda wildcards: shlex.join(simulated_nlb_datasets()),
    shell:
        "python {params.script:q} nlb-metrics --table {input:q} --colours {params.colours}"
        " --simulated {params.simulated} --out {output.png:q} > {log:q} 2>&1"


rule figure_synthetic_rate_r2:
    input:
        "results/tables/synthetic_study.csv",
    output:
        png=report(
            "results/figures/synthetic_rate_r2.png",
            category="Neural Data Transformers",
            caption="../report/synthetic_rate_r2.rst",
        ),
        pdf="results/figures/synthetic_rate_r2.pdf",
    log:
        "results/logs/figures/synthetic_rate_r2.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("synthetic_study"),
    shell:
        "python {params.script:q} nlb-metrics --metrics rate_r2 --table {input:q}"
        " --colours {params.colours} --out {output.png:q} > {log:q} 2>&1"


rule figure_latency:
    input:
        "results/tables/latency.csv",
    output:
        png=report(
            "results/figures/ndt_latency.png",
            category="Neural Data Transformers",
            caption="../report/ndt_latency.rst",
        ),
        pdf="results/figures/ndt_latency.pdf",
    log:
        "results/logs/figures/ndt_latency.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("latency_study"),
        goal_kinds=lambda wildcards: " ".join(latency_kinds()),
    shell:
        "python {params.script:q} latency --table {input:q} --colours {params.colours}"
        " --goal-kinds {params.goal_kinds} --out {output.png:q} > {log:q} 2>&1"


# Per-run figures of the NLB study's first seed (RUN_FIGURES, targets: nlb_run_figures in common.smk).
# Dataset names end in _<bin>ms, which splits "<figure>_<dataset>_<model>" where all hold underscores.


localrules:
    figure_per_run,


rule figure_per_run:
    input:
        unpack(run_figure_inputs),
    output:
        png=report(
            "results/figures/{figure}_{dataset}_{model}.png",
            category="Neural Latents Benchmark",
            subcategory="{dataset}",
            caption="../report/run_figure.rst",
        ),
        pdf="results/figures/{figure}_{dataset}_{model}.pdf",
    log:
        "results/logs/figures/{figure}_{dataset}_{model}.log",
    wildcard_constraints:
        figure="|".join(RUN_FIGURES),
        dataset=r"[a-z0-9_]*_[0-9]+ms",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        arguments=run_figure_arguments,
    shell:
        "python {params.script:q} {params.arguments} --out {output.png:q} > {log:q} 2>&1"


# SBTT (Zhu et al. 2021): metrics against the dropped fraction of channels (SBTT_FIGURES in common.smk),
# SBTT from pretrained dynamics vs from scratch, and the two-photon comparison of sub-frame SBTT,
# frame-resolution models and smoothing.


localrules:
    figure_sbtt_bandwidth,
    figure_sbtt_pretraining,
    figure_sbtt_two_photon,


rule figure_sbtt_bandwidth:
    input:
        "results/tables/sbtt_study.csv",
    output:
        png=report(
            "results/figures/{figure}.png",
            category="Zhu et al. 2021 (SBTT)",
            caption="../report/sbtt_bandwidth.rst",
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(SBTT_FIGURES),
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        metrics=lambda wildcards: shlex.join(SBTT_FIGURES[wildcards.figure]),
    shell:
        "python {params.script:q} sbtt-bandwidth --table {input:q}"
        " --metrics {params.metrics} --out {output.png:q} > {log:q} 2>&1"


rule figure_sbtt_pretraining:
    input:
        "results/tables/sbtt_pretraining_study.csv",
    output:
        png=report(
            "results/figures/sbtt_pretraining.png",
            category="Zhu et al. 2021 (SBTT)",
            caption="../report/sbtt_pretraining.rst",
        ),
        pdf="results/figures/sbtt_pretraining.pdf",
    log:
        "results/logs/figures/sbtt_pretraining.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} sbtt-pretraining --table {input:q} --out {output.png:q} > {log:q} 2>&1"


rule figure_sbtt_two_photon:
    input:
        "results/tables/two_photon_study.csv",
    output:
        png=report(
            "results/figures/sbtt_two_photon.png",
            category="Zhu et al. 2021 (SBTT)",
            caption="../report/sbtt_two_photon.rst",
        ),
        pdf="results/figures/sbtt_two_photon.pdf",
    log:
        "results/logs/figures/sbtt_two_photon.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script:q} sbtt-two-photon --table {input:q} --out {output.png:q} > {log:q} 2>&1"


# AutoLFADS experiments (Keshtkaran et al. 2022): metrics against training-set size (small_data_study),
# and validation NLL, sample-validation NLL and rate R² vs truth over training with and without
# coordinated dropout (cd_study), drawn from the histories of its gradient-trained runs.


localrules:
    figure_small_data,
    figure_cd_validation,


rule figure_small_data:
    input:
        "results/tables/small_data_study.csv",
    output:
        png=report(
            "results/figures/small_data.png",
            category="AutoLFADS",
            caption="../report/small_data.rst",
        ),
        pdf="results/figures/small_data.pdf",
    log:
        "results/logs/figures/small_data.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("small_data_study"),
    shell:
        "python {params.script:q} metrics-vs-trials --table {input:q} --colours {params.colours}"
        " --out {output.png:q} > {log:q} 2>&1"


rule figure_cd_validation:
    input:
        lambda wildcards: [f"{run}/output.h5" for run in history_runs("cd_study")],
    output:
        png=report(
            "results/figures/cd_validation.png",
            category="AutoLFADS",
            caption="../report/cd_validation.rst",
        ),
        pdf="results/figures/cd_validation.pdf",
    log:
        "results/logs/figures/cd_validation.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
        colours=lambda wildcards: model_colours("cd_study"),
    shell:
        "python {params.script:q} cd-validation --outputs {input:q} --colours {params.colours}"
        " --out {output.png:q} > {log:q} 2>&1"
