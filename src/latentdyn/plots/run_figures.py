"""Per-run figures, offered by the kinds that list them in kind.yaml `figures`: inferred rates against the
truth, factor trajectories, inferred inputs around the alignment event, and training curves.

Plain functions of arrays (trials × bins × channels) and tables, each returning a matplotlib Figure;
scripts/plot_figure.py reads the files and saves the figures (plots.common.save_figure).
"""

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap

from latentdyn.plots.common import panel_grid, plt

MAX_SCATTER_POINTS = 20_000
MAX_TRAJECTORIES = 300


def bin_times_ms(n_bins, bin_width_s, start_ms=0.0):
    """Centres of `n_bins` bins of `bin_width_s`, in ms from the alignment (the window starts at `start_ms`)."""
    width_ms = 1000.0 * bin_width_s
    return start_ms + width_ms * (np.arange(n_bins) + 0.5)


def example_neurons(true_rates, n_neurons):
    """The `n_neurons` units whose true rates vary most over trials and bins (most informative to draw), in
    unit order."""
    flat = np.asarray(true_rates, dtype=float).reshape(-1, true_rates.shape[-1])
    variance = np.nanvar(flat, axis=0)
    return np.sort(np.argsort(-variance, kind="stable")[:n_neurons])


def r2_score(true, inferred):
    """Coefficient of determination of `inferred` against `true` over their finite entries."""
    true, inferred = np.ravel(true).astype(float), np.ravel(inferred).astype(float)
    finite = np.isfinite(true) & np.isfinite(inferred)
    true, inferred = true[finite], inferred[finite]
    total = np.sum((true - true.mean()) ** 2)
    return float(1.0 - np.sum((true - inferred) ** 2) / total) if total > 0 else float("nan")


def plot_rates_vs_truth(true_rates, inferred_rates, bin_width_s, title="", n_neurons=4, n_trials=3, start_ms=0.0,
                        neuron_labels=None):
    """True (black) and inferred (colour) rates of the most variable neurons on the first eval trials (one
    row per trial, one column per neuron), and inferred against true over every trial, bin and neuron.

    Rates are expected spikes per bin, trials × bins × units, the same shape for truth and inference;
    `neuron_labels` names the units in the column titles (default "neuron <index>").
    """
    true_rates, inferred_rates = np.asarray(true_rates, dtype=float), np.asarray(inferred_rates, dtype=float)
    if true_rates.shape != inferred_rates.shape:
        raise ValueError(f"true rates {true_rates.shape} and inferred rates {inferred_rates.shape} differ in shape")
    neurons = example_neurons(true_rates, n_neurons)
    trials = np.arange(min(n_trials, len(true_rates)))
    times = bin_times_ms(true_rates.shape[1], bin_width_s, start_ms)
    fig = plt.figure(figsize=(2.6 * len(neurons) + 4.2, 2.0 * len(trials) + 0.8))
    grid = fig.add_gridspec(len(trials), len(neurons) + 2, width_ratios=[1] * len(neurons) + [0.15, 1.6])
    for row, trial in enumerate(trials):
        for col, neuron in enumerate(neurons):
            ax = fig.add_subplot(grid[row, col])
            ax.plot(times, true_rates[trial, :, neuron], color="black", lw=1.2, label="true")
            ax.plot(times, inferred_rates[trial, :, neuron], color="tab:green", lw=1.2, label="inferred")
            if row == 0:
                ax.set_title(f"neuron {neuron}" if neuron_labels is None else neuron_labels[neuron], fontsize=9)
            if col == 0:
                ax.set_ylabel(f"trial {trial}\nspikes/bin", fontsize=8)
            if row == len(trials) - 1:
                ax.set_xlabel("time (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7, loc="upper left")
    ax = fig.add_subplot(grid[:, -1])
    true_flat, inferred_flat = true_rates.ravel(), inferred_rates.ravel()
    finite = np.flatnonzero(np.isfinite(true_flat) & np.isfinite(inferred_flat))
    shown = finite if len(finite) <= MAX_SCATTER_POINTS else np.random.default_rng(0).choice(
        finite, MAX_SCATTER_POINTS, replace=False)
    ax.scatter(true_flat[shown], inferred_flat[shown], s=2, alpha=0.3, color="tab:green", rasterized=True)
    if len(finite):
        low = min(true_flat[finite].min(), inferred_flat[finite].min())
        high = max(true_flat[finite].max(), inferred_flat[finite].max())
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
    # one R² over every entry, not the tables' rate R² (the mean of per-neuron R²s): named apart
    ax.set(xlabel="true rate (spikes/bin)", ylabel="inferred rate (spikes/bin)",
           title=f"all eval entries: pooled R² = {r2_score(true_rates, inferred_rates):.3f}")
    fig.suptitle(title)
    return fig


def project_factors(factors, n_components=3):
    """Factors (trials × bins × k) on their top `n_components` principal components, computed over every
    trial and bin. Returns (projection: trials × bins × n_components, explained-variance fractions).
    With fewer than `n_components` factors the missing components are zero."""
    factors = np.asarray(factors, dtype=float)
    flat = factors.reshape(-1, factors.shape[-1])
    centred = flat - flat.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    k = min(n_components, components.shape[0])
    projected = np.zeros((len(flat), n_components))
    projected[:, :k] = centred @ components[:k].T
    variance = singular**2
    explained = np.zeros(n_components)
    if variance.sum() > 0:
        explained[:k] = variance[:k] / variance.sum()
    return projected.reshape(*factors.shape[:-1], n_components), explained


def condition_labels(n_trials, cond_idx):
    """Each trial's condition (index into `cond_idx`, a list of trial-index arrays), -1 where it has none."""
    labels = np.full(n_trials, -1)
    for condition, trials in enumerate(cond_idx or []):
        trials = np.asarray(trials, dtype=int)
        labels[trials[(trials >= 0) & (trials < n_trials)]] = condition
    return labels


def _condition_cmap(labels):
    """One hsv colour per condition, as a colormap its colour key (a colorbar) can show."""
    n_conditions = max(labels.max() + 1, 1)
    return ListedColormap([plt.get_cmap("hsv")(c / n_conditions) for c in range(n_conditions)])


def _condition_key(fig, ax, cmap):
    """A colorbar naming each condition's colour (ticks at a few condition indices)."""
    n = cmap.N
    key = fig.colorbar(ScalarMappable(BoundaryNorm(np.arange(n + 1) - 0.5, n), cmap), ax=ax, shrink=0.6, pad=0.1)
    key.set_ticks(np.unique(np.linspace(0, n - 1, min(n, 6)).round()))
    key.set_label("condition (grey: none)", fontsize=8)
    key.ax.tick_params(labelsize=7)


def plot_factor_trajectories(factors, bin_width_s, cond_idx=None, title="", start_ms=0.0,
                             max_trials=MAX_TRAJECTORIES):
    """Single-trial factors on their top 3 PCs (PCA over every trial and bin): a 3-D plot with one line per
    trial (at most `max_trials`, evenly spread), coloured by condition (grey for trials in none, one colour
    when there are no conditions), and each PC against time."""
    projected, explained = project_factors(factors)
    labels = condition_labels(len(projected), cond_idx)
    cmap = _condition_cmap(labels)
    colors = [cmap(label) if label >= 0 else "0.5" for label in labels]
    shown = np.unique(np.linspace(0, len(projected) - 1, min(max_trials, len(projected))).round().astype(int))
    times = bin_times_ms(projected.shape[1], bin_width_s, start_ms)
    fig = plt.figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(3, 2, width_ratios=[1.3, 1])
    ax = fig.add_subplot(grid[:, 0], projection="3d")
    for trial in shown:
        ax.plot(*projected[trial].T, color=colors[trial], lw=0.7, alpha=0.8)
        ax.scatter(*projected[trial, 0], color=colors[trial], s=6, depthshade=False)
    ax.set(xlabel="PC 1", ylabel="PC 2", zlabel="PC 3")
    n_conditions = len(set(labels[labels >= 0]))
    coloured = f"{n_conditions} conditions" if n_conditions else "no conditions"
    ax.set_title(f"{len(shown)} trials, {coloured}\n(dot: first bin)", fontsize=9)
    if n_conditions:
        _condition_key(fig, ax, cmap)
    for pc in range(3):
        ax = fig.add_subplot(grid[pc, 1])
        for trial in shown:
            ax.plot(times, projected[trial, :, pc], color=colors[trial], lw=0.5, alpha=0.6)
        ax.set_ylabel(f"PC {pc + 1}\n({100 * explained[pc]:.0f}% var)", fontsize=8)
        ax.tick_params(labelsize=7)
        if pc == 2:
            ax.set_xlabel("time (ms)", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_inferred_inputs(inputs, bin_width_s, start_ms=None, event="alignment", title=""):
    """Inferred inputs (trials × bins × controller outputs): mean ± SD over trials per controller output,
    against time from the alignment event (dashed line at 0) when the window's start `start_ms` is known,
    else against time from the window's start (no event line)."""
    inputs = np.asarray(inputs, dtype=float)
    n_outputs = inputs.shape[-1]
    times = bin_times_ms(inputs.shape[1], bin_width_s, 0.0 if start_ms is None else start_ms)
    mean, sd = np.nanmean(inputs, axis=0), np.nanstd(inputs, axis=0)
    fig, axes = plt.subplots(n_outputs, 1, figsize=(6, 1.6 * n_outputs + 0.8), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.fill_between(times, mean[:, i] - sd[:, i], mean[:, i] + sd[:, i], color="tab:purple", alpha=0.25,
                        lw=0)
        ax.plot(times, mean[:, i], color="tab:purple", lw=1.4)
        if start_ms is not None:
            ax.axvline(0.0, color="black", ls="--", lw=0.8)
        ax.set_ylabel(f"input {i + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel(f"time from {event} (ms)" if start_ms is not None else "time from window start (ms)")
    axes[0, 0].set_title(f"mean ± SD over {len(inputs)} trials", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def history_panels(columns):
    """Which history.csv columns go in which panel: [(panel title, [columns])], in the order drawn.

    'loss' (train_loss, valid_loss and their smoothed values), one panel per logged term (train_<term>,
    valid_<term>, smoothed), 'ramps' (every *_ramp term, train values when both splits log it) and
    'learning rate' (lr). Columns absent from the table give no panel; `epoch` and `seconds` none.
    """
    columns = list(columns)
    splits = ("train_", "valid_")
    smoothed = [c for c in columns if c.endswith("_smoothed")]
    logged = [c for c in columns if c.startswith(splits) and c not in smoothed]
    terms = list(dict.fromkeys(c.split("_", 1)[1] for c in logged))
    panels = {"loss": []}
    ramps = []
    for term in terms:
        present = [f"{s}{term}" for s in splits if f"{s}{term}" in columns]
        if term.endswith("ramp"):
            ramps.append(present[0])
        else:
            panels[term] = present
    for column in smoothed:
        base = column[: -len("_smoothed")]
        term = base.split("_", 1)[1] if base.startswith(splits) else base
        panels.setdefault(term if term in panels else "loss", []).append(column)
    result = [(title, names) for title, names in panels.items() if names]
    if ramps:
        result.append(("ramps", ramps))
    if "lr" in columns:
        result.append(("learning rate", ["lr"]))
    return result


def _line_style(column):
    if column.endswith("_smoothed"):
        return {"color": "black", "lw": 1.0, "ls": "--"}
    if column.startswith("valid_"):
        return {"color": "tab:orange", "lw": 1.2}
    return {"color": "tab:blue", "lw": 1.2}


def constant_panels(history, panels):
    """The `panels` whose every column holds one value (L2 at 0, a fixed learning rate): a flat line says
    no more than its value does."""
    return [(title, columns) for title, columns in panels
            if all(history[c].dropna().nunique() <= 1 for c in columns)]


R2_AXIS_FLOOR = -1.0  # R² panels of training curves start here when earlier epochs fall below it


def plot_training_curves(history, title=""):
    """Training curves from a history table (pandas DataFrame, one row per epoch): one panel per entry of
    `history_panels` (loss, each logged term, ramps, learning rate) that changes, train blue, valid orange,
    smoothed dashed; log-scaled where every value is positive and they span more than a factor of 20.
    Constant panels are named with their value in the title instead of drawn."""
    panels = history_panels(history.columns)
    constant = constant_panels(history, panels)
    panels = [panel for panel in panels if panel not in constant] or panels[:1]
    epochs = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
    fig, axes = panel_grid(len(panels), 3.6, 2.8)
    for ax, (panel, columns) in zip(axes, panels):
        for i, column in enumerate(columns):
            ramp = {"color": plt.get_cmap("tab10")(i % 10), "lw": 1.2, "ls": ("-", "--", ":", "-.")[i % 4]}
            style = ramp if panel == "ramps" else _line_style(column)
            ax.plot(epochs, history[column].to_numpy(dtype=float), label=column, **style)
        values = history[columns].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if panel != "ramps" and len(values) and values.min() > 0 and values.max() > 20 * values.min():
            ax.set_yscale("log")
        title = panel
        if panel.endswith("r2") and len(values) and values.min() < R2_AXIS_FLOOR < values.max():
            ax.set_ylim(bottom=R2_AXIS_FLOOR)  # the first epochs' R² (far below 0) would flatten the rest
            title += f" (axis from {R2_AXIS_FLOOR:g}; lowest {values.min():.3g})"
        ax.set(title=title, xlabel="epoch")
        ax.legend(fontsize=6)
    flat = ", ".join(f"{panel} = {history[columns[0]].dropna().iloc[0]:g}" for panel, columns in constant
                     if history[columns[0]].notna().any())
    fig.suptitle(title + (f"\nconstant, not drawn: {flat}" if flat else ""), fontsize=10)
    fig.tight_layout()
    return fig


POPULATION_FIXED = ("generation", "worker", "epoch", "score", "copied_from")
POPULATION_TIMES = ("started", "finished", "training_s")  # timing columns, not drawn; absent in older files


def plot_population_search(population, title=""):
    """A population search (AutoLFADS's population.csv: one row per generation and worker) over
    generations: the score (each worker a dot, the population's best a line) and one panel per searched
    hyperparameter, each worker's value as a line; a clone (the worker started the generation from
    another's checkpoint) is marked with a ring. Log-scaled where the values span more than a factor of 20."""
    searched = [column for column in population.columns if column not in POPULATION_FIXED + POPULATION_TIMES]
    panels = ["score", *searched]
    fig, axes = panel_grid(len(panels), 3.6, 2.8)
    cloned = population["copied_from"].notna()
    colours = plt.get_cmap("tab20")
    for ax, column in zip(axes, panels):
        for worker, rows in population.groupby("worker"):
            style = {"color": colours(int(worker) % 20), "lw": 0.9, "alpha": 0.8}
            if column == "score":
                ax.plot(rows["generation"], rows[column], "o", ms=2.5, **style)
            else:
                ax.plot(rows["generation"], rows[column], **style)
        ax.plot(population.loc[cloned, "generation"], population.loc[cloned, column], "o", mfc="none", mec="black",
                ms=5, lw=0, label="clone")
        if column == "score":
            best = population.groupby("generation")["score"].min()
            ax.plot(best.index, best.to_numpy(), color="black", lw=1.5, label="best")
        values = population[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) and values.min() > 0 and values.max() > 20 * values.min():
            ax.set_yscale("log")
        ax.set(title=column, xlabel="generation")
        ax.legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
