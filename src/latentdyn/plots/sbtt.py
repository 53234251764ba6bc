"""SBTT figures (Zhu et al. 2021): metrics against the dropped fraction of channels, SBTT from pretrained
dynamics against SBTT from scratch, and the two-photon comparison of sub-frame SBTT with frame-resolution
models."""

import re

import numpy as np

from latentdyn.plots.common import draw_seeds_and_mean, panel_grid, plt, seeds_note

# Published SBTT rate R² on the demo Lorenz data (29 channels) per bandwidth (reference README §5).
PUBLISHED_RATE_R2 = {29: 0.911, 25: 0.908, 20: 0.891, 15: 0.888, 10: 0.852, 5: 0.757, 3: 0.589, 2: 0.339}
PUBLISHED_DATASET = "sbtt_lorenz"
PUBLISHED_CHANNELS = 29
R2_FLOOR = -1.0  # R² below this is drawn at it (a zero-filled model at low bandwidth scores far below 0)
METRIC_LABELS = {"rate_r2": "rate R²", "co-bps": "co-bps", "vel R2": "vel R²"}
BAND_COLUMN = re.compile(r"^subframe_rate_r2_(?P<low>[0-9.]+)-(?P<high>[0-9.]+)hz$")
PRETRAINED_LABEL = "pretrained on n full trials, then SBTT"
PRETRAINED_MODEL = re.compile(r"^(?P<model>.+)-P(?P<trials>[0-9]+)$")  # <model>-P<n>: pretrained on n full trials
TWO_PHOTON_METRICS = {
    "subframe_calcium_r2": "dF/F R²",
    "subframe_rate_r2": "rate R²",
    "subframe_rate_diff_r2": "Δrate R²\n(high freq.)",
    "latent_r2": "latent R²",
}


def _colors(names):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _is_r2(metric):
    return metric.endswith("r2") or metric.endswith("R2")


def plot_bandwidth_curves(table, metrics):
    """One panel per source dataset and metric: the metric (each seed and the mean over seeds) against the
    fraction of held-in channels dropped, one line per model; the published SBTT curve on the demo Lorenz
    data."""
    table = table.assign(source=table["dataset"].str.replace(r"_bw[0-9]+$", "", regex=True))
    metrics = [m for m in metrics if m in table.columns and table[m].notna().any()]
    sources = [s for s in dict.fromkeys(table["source"]) if any(table.loc[table["source"] == s, m].notna().any() for m in metrics)]
    if not metrics or not sources:
        raise ValueError(f"the table has no values of {metrics} to draw")
    colors = _colors(list(dict.fromkeys(table["model"])))
    fig, axes = panel_grid(len(sources) * len(metrics), 4.6, 3.6)
    panels = iter(axes)
    for source in sources:
        rows = table[table["source"] == source]
        for metric, ax in zip(metrics, panels):  # metrics first: zip then takes no panel past the last metric
            floor = R2_FLOOR if _is_r2(metric) else None
            n = draw_seeds_and_mean(ax, rows, "dropped_fraction", metric, "model", colors, floor=floor)
            clipped = floor is not None and bool((rows[metric] < floor).any())
            for model, runs in rows.groupby("model", sort=False):
                mean = runs.groupby("dropped_fraction")[metric].mean().dropna()
                mark_clipped(ax, mean.index, mean, mean.clip(lower=floor), colors[model])
            if metric == "rate_r2" and source == PUBLISHED_DATASET:
                bw = np.array(sorted(PUBLISHED_RATE_R2, reverse=True))
                ax.plot(1 - bw / PUBLISHED_CHANNELS, [PUBLISHED_RATE_R2[b] for b in bw], "k--", lw=1, marker="s",
                        ms=4, mfc="none", label="SBTT, published")
            ticks = rows[["dropped_fraction", "bandwidth"]].drop_duplicates().sort_values("dropped_fraction")
            ax.set_xticks(ticks["dropped_fraction"], [f"{f:.2f}\n({int(b)})" for f, b in ticks.to_numpy()], fontsize=7)
            ax.set_xlabel("fraction of channels dropped\n(channels observed per bin)")
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            below = f"\n▽: below {R2_FLOOR:g}, drawn at it (a mean's true value above it)" if clipped else ""
            ax.set_title(f"{source} ({seeds_note(n)}){below}", fontsize=8)
            ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def mark_clipped(ax, x, mean, shown, colour):
    """Points drawn at the floor instead of their value: a downward triangle there, and the true value
    written above it, so that a clipped point is not read as a measured one."""
    for xi, value, drawn in zip(x, mean, shown):
        if drawn != value:
            ax.plot(xi, drawn, marker="v", ms=8, mfc="none", color=colour, ls="none")
            ax.annotate(f"{value:.2g}", (xi, drawn), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=6, color=colour)


def plot_pretraining(table, metric="rate_r2"):
    """One panel per bandwidth: `metric` (each seed and the mean over seeds) of SBTT started from dynamics
    pretrained on n fully observed trials, against n; SBTT from scratch on the same sparse data as a line,
    with its seeds' s.d. as a band only where it has several seeds."""
    names = table["model"].str.extract(PRETRAINED_MODEL)
    table = table.assign(trials=names["trials"].astype(float), series=PRETRAINED_LABEL)
    bandwidths = sorted(table["bandwidth"].unique(), reverse=True)
    if table["trials"].isna().all() or table["trials"].notna().all():
        raise ValueError("the table needs runs pretrained on n full trials (<model>-P<n>) and runs from scratch")
    fig, axes = panel_grid(len(bandwidths), 4.4, 3.6)
    for ax, bandwidth in zip(axes, bandwidths):
        rows = table[table["bandwidth"] == bandwidth]
        scratch = rows.loc[rows["trials"].isna(), metric]
        pretrained = rows[rows["trials"].notna()]
        n = draw_seeds_and_mean(ax, pretrained, "trials", metric, "series", {PRETRAINED_LABEL: "tab:blue"})
        several = len(scratch) > 1
        ax.axhline(scratch.mean(), color="k", lw=1,
                   label=f"SBTT from scratch ({'mean ± s.d. of ' + str(len(scratch)) + ' seeds' if several else 'one seed'})")
        if several:
            ax.axhspan(scratch.mean() - scratch.std(), scratch.mean() + scratch.std(), color="0.85", zorder=0)
        x = sorted(pretrained["trials"].unique())
        ax.set_xscale("log")
        ax.set_xticks(x, [str(int(k)) for k in x])
        ax.minorticks_off()
        channels = round(bandwidth / (1 - rows["dropped_fraction"].iloc[0]))
        ax.set(xlabel="fully observed trials pretrained on", ylabel=METRIC_LABELS.get(metric, metric))
        ax.set_title(f"{bandwidth} of {channels} channels observed per bin\n({seeds_note(n)})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_two_photon(table):
    """Two-photon SBTT: recovery metrics per model and resolution (bars), and rate R² per frequency band."""
    table = table.assign(run=table["model"] + " @ " + table["resolution"].astype(str))
    runs = list(dict.fromkeys(table.sort_values(["model", "resolution"], ascending=[True, False])["run"]))
    colors = _colors(runs)
    metrics = [m for m in TWO_PHOTON_METRICS if m in table.columns and table[m].notna().any()]
    bands = sorted(((float(m["low"]), float(m["high"]), c) for c in table.columns if (m := BAND_COLUMN.match(c))))
    fig, (bars, spectrum) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        rows = table[table["run"] == run]
        several = rows.groupby("seed").ngroups > 1  # s.d. of one seed is not a spread: no error bar
        mean = [rows[m].mean() for m in metrics]
        sd = [rows[m].std() for m in metrics] if several else None
        bars.bar(np.arange(len(metrics)) + i * width, np.maximum(mean, R2_FLOOR), width, yerr=sd, color=colors[run],
                 label=run)
        if bands:
            values = [rows[c].mean() for _, _, c in bands]
            errors = [rows[c].std() for _, _, c in bands] if several else None
            spectrum.errorbar(np.arange(len(bands)), np.maximum(values, R2_FLOOR), yerr=errors, marker="o", capsize=3,
                              color=colors[run], label=run)
    bars.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, [TWO_PHOTON_METRICS[m] for m in metrics], fontsize=8)
    floor = f" (R² < {R2_FLOOR:g} drawn at {R2_FLOOR:g})"
    bars.set(ylabel="R² vs sub-frame truth", title="recovery at sub-frame resolution" + floor)
    bars.axhline(0.0, color="0.6", lw=0.8)
    bars.legend(fontsize=7)
    if bands:
        spectrum.set_xticks(np.arange(len(bands)), [f"{low:g}–{high:g}" for low, high, _ in bands])
        if len(bands) > 1:  # the last band starts at the frame rate's Nyquist frequency (metrics/calcium.py)
            spectrum.axvline(len(bands) - 1.5, color="0.6", ls=":", lw=1, label="frame Nyquist")
    spectrum.set(xlabel="frequency band (Hz)", ylabel="rate R²", title="rate R² per frequency band" + floor)
    spectrum.axhline(0.0, color="0.8", lw=0.8, zorder=0)
    spectrum.legend(fontsize=7)
    fig.tight_layout()
    return fig
