"""Benchmark results figure: each metric per dataset and model (NLB metrics, or e.g. rate R² on synthetic sets)."""

import numpy as np

from latentdyn.plots.common import plt

NLB_METRICS = ["co-bps", "vel R2", "psth R2", "fp-bps"]


def plot_nlb_metrics(table, colours, metrics=NLB_METRICS):
    """One panel per metric (mean ± SD over seeds), bars per model in `colours[model]` (the workflow passes
    each model's kind's colour), grouped by dataset."""
    metrics = [m for m in metrics if m in table.columns and table[m].notna().any()]
    datasets = list(dict.fromkeys(table["dataset"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4 * max(len(metrics), 1), 3.4), squeeze=False)
    width = 0.8 / len(models)
    for ax, metric in zip(axes[0], metrics):
        for i, model in enumerate(models):
            stats = table[table["model"] == model].groupby("dataset")[metric].agg(["mean", "std"]).reindex(datasets)
            ax.bar(np.arange(len(datasets)) + i * width, stats["mean"], width, yerr=stats["std"].fillna(0.0), label=model, color=colours[model])
        ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets, rotation=45, ha="right")
        ax.set(title=metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
