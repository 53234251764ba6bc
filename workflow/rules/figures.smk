# One rule per paper figure; each writes a PNG (shown in the report) and a PDF beside it.
# Figures are light, so they run on the submitting host.


localrules:
    figure_example_data,
    figure_metric_vs_latent,
    figure_latent_trajectories,
    figure_fixed_point_eigenvalues,
    figure_nlb_metrics,


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
        "python {params.script} example-data --data {input} --out {output.png} > {log} 2>&1"


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
        "python {params.script} metric-vs-latent --table {input}"
        " --metric {params.metric} --out {output.png} > {log} 2>&1"


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
        "python {params.script} trajectories --data {input.data}"
        " --outputs {input.outputs} --fixed-points {input.fixed_points}"
        " --out {output.png} > {log} 2>&1"


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
        "python {params.script} eigenvalues --data {input.data}"
        " --outputs {input.outputs} --fixed-points {input.fixed_points}"
        " --out {output.png} > {log} 2>&1"


rule figure_nlb_metrics:
    input:
        "results/tables/nlb_study.csv",
    output:
        png=report(
            "results/figures/nlb_metrics.png",
            category="Neural Latents Benchmark",
            caption="../report/nlb_metrics.rst",
        ),
        pdf="results/figures/nlb_metrics.pdf",
    log:
        "results/logs/figures/nlb_metrics.log",
    conda:
        "../../envs/plot.yaml"
    params:
        script=f"{SCRIPTS}/plot_figure.py",
    shell:
        "python {params.script} nlb-metrics --table {input} --out {output.png} > {log} 2>&1"
