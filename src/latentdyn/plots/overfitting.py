"""AutoLFADS experiments (Keshtkaran et al. 2022; Keshtkaran & Pandarinath 2019; reference README §9):
metrics against the number of training trials (experiment 2), and the validation NLL, sample-validation
NLL and rate R² against the truth over training, with and without coordinated dropout (experiment 1)."""

import re

from latentdyn.plots.common import draw_seeds_and_mean, legend_below, panel_grid, plt, seeds_note

TRIAL_COUNT = re.compile(r"^(?P<source>.+)_full(?P<trials>[0-9]+)$")  # <dataset>_full<n>: n training trials
SMALL_DATA_METRICS = {"co-bps": "co-bps", "rate_r2": "rate R² (vs truth)", "vel R2": "vel R²"}
# history.csv columns of experiment 1 -> panel title; sample validation needs the model's sv_rate > 0
TRAINING_CURVES = {
    "valid_recon": "validation NLL (ordinary)",
    "valid_sv_nll": "sample-validation NLL",
    "valid_rate_r2": "rate R² vs truth (validation trials)",
}


def distinct_colours(models, colours):
    """`colours` (model -> its kind's colour) where they tell `models` apart; else the colour cycle
    (two LFADS variants share the kind's colour)."""
    chosen = [colours[model] for model in models]
    if len(set(chosen)) == len(chosen):
        return dict(zip(models, chosen))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {model: cycle[i % len(cycle)] for i, model in enumerate(models)}


def plot_metrics_vs_trials(table, colours):
    """One panel per source dataset and metric present (SMALL_DATA_METRICS): the metric (each seed and the
    mean) against the training trials kept, one line per model (`colours`: model -> colour)."""
    parsed = table["dataset"].str.extract(TRIAL_COUNT)
    table = table.assign(source=parsed["source"], trials=parsed["trials"].astype(float))
    metrics = [m for m in SMALL_DATA_METRICS if m in table.columns and table[m].notna().any()]
    sources = list(dict.fromkeys(table["source"].dropna()))
    if not metrics or not sources:
        raise ValueError(f"the table has no <dataset>_full<n> rows with any of {list(SMALL_DATA_METRICS)}")
    colours = distinct_colours(list(dict.fromkeys(table["model"])), colours)
    fig, axes = panel_grid(len(sources) * len(metrics), 4.2, 3.4)
    panels = iter(axes)
    n = 1
    for source in sources:
        rows = table[table["source"] == source]
        for metric, ax in zip(metrics, panels):
            n = max(n, draw_seeds_and_mean(ax, rows, "trials", metric, "model", colours))
            ax.set(xscale="log", xlabel="training trials", ylabel=SMALL_DATA_METRICS[metric], title=source)
            ax.set_xticks(sorted(rows["trials"].unique()), labels=[f"{t:.0f}" for t in sorted(rows["trials"].unique())])
            ax.minorticks_off()
    legend_below(fig, axes)
    fig.suptitle(f"metrics against training-set size ({seeds_note(n)})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves_vs_truth(histories, colours):
    """Experiment 1: per dataset, one panel per TRAINING_CURVES column present, every run's curve over
    epochs, one line per seed (`histories`: (dataset, model, seed) -> history.csv as a DataFrame;
    `colours`: model -> colour).
    Without CD the ordinary validation NLL can keep falling while the rate R² against the truth falls;
    the sample-validation NLL rises with it."""
    columns = [c for c in TRAINING_CURVES if any(c in h.columns and h[c].notna().any() for h in histories.values())]
    datasets = list(dict.fromkeys(dataset for dataset, _, _ in histories))
    if not columns or not datasets:
        raise ValueError(f"no history has any of {list(TRAINING_CURVES)}")
    colours = distinct_colours(list(dict.fromkeys(model for _, model, _ in histories)), colours)
    fig, axes = panel_grid(len(datasets) * len(columns), 4.2, 3.2)
    panels = iter(axes)
    for dataset in datasets:
        for column, ax in zip(columns, panels):
            for (run_dataset, model, _), history in histories.items():
                if run_dataset == dataset and column in history.columns:
                    ax.plot(history["epoch"], history[column], color=colours[model], lw=1, alpha=0.8, label=model)
            ax.set(xlabel="epoch", title=f"{dataset}\n{TRAINING_CURVES[column]}")
            if column == "valid_rate_r2":
                low = max(ax.get_ylim()[0], -1.0)  # early epochs' R² far below 0 would flatten the rest
                ax.set_ylim(low, 1.0)
    legend_below(fig, axes)
    fig.tight_layout()
    return fig

