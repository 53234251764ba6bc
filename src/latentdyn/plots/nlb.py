"""Benchmark results figure: each metric per dataset and model (NLB metrics, or e.g. rate R² on synthetic sets)."""

from latentdyn.plots.common import draw_seeds_and_mean, legend_below, panel_grid, seeds_note

NLB_METRICS = ["co-bps", "vel R2", "psth R2", "fp-bps"]
UNITS = {"co-bps": "bits/spike", "fp-bps": "bits/spike"}
ZERO_MEANS = "0: no better than each neuron's mean rate (bits/spike) or the mean (R²)"


def plot_nlb_metrics(table, colours, metrics=NLB_METRICS, simulated=()):
    """One panel per metric: each seed and the mean over seeds per dataset and model (`colours[model]`, the
    kind's colour), a line at 0, where a metric says the model does no better than a mean; datasets in
    `simulated` are labelled as such, so that they are not read as recordings."""
    metrics = [m for m in metrics if m in table.columns and table[m].notna().any()]
    if not metrics:
        raise ValueError(f"the table has no values of {metrics} to draw")
    labels = {d: f"{d}\n(simulated)" if d in simulated else d for d in dict.fromkeys(table["dataset"])}
    table = table.assign(dataset=table["dataset"].map(labels))
    palette = {model: colours[model] for model in dict.fromkeys(table["model"])}
    fig, axes = panel_grid(len(metrics), 3.8, 3.6)
    n = 0
    for ax, metric in zip(axes, metrics):
        n = max(n, draw_seeds_and_mean(ax, table, "dataset", metric, "model", palette, categorical=True))
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.set(xlabel="", ylabel=f"{metric} ({UNITS[metric]})" if metric in UNITS else metric)
        ax.set_title(metric, fontsize=10)
    fig.suptitle(f"{seeds_note(n)}; dashed line: {ZERO_MEANS}", fontsize=8)
    fig.tight_layout()
    legend_below(fig, axes)
    return fig
