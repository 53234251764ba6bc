"""Benchmark results figure: each NLB metric per dataset and model."""

import numpy as np

from latentdyn.plots.common import model_color, plt

NLB_METRICS = ["co-bps", "vel R2", "psth R2", "fp-bps"]


def plot_nlb_metrics(table):
    metrics = [m for m in NLB_METRICS if m in table.columns and table[m].notna().any()]
    datasets = list(dict.fromkeys(table["dataset"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4 * max(len(metrics), 1), 3.4), squeeze=False)
    width = 0.8 / len(models)
    for ax, metric in zip(axes[0], metrics):
        for i, model in enumerate(models):
            stats = table[table["model"] == model].groupby("dataset")[metric].agg(["mean", "std"]).reindex(datasets)
            ax.bar(np.arange(len(datasets)) + i * width, stats["mean"], width, yerr=stats["std"].fillna(0.0), label=model, color=model_color(model))
        ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets, rotation=45, ha="right")
        ax.set(title=metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
