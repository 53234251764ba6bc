"""Latency figure (Ye & Pandarinath 2021's NDT vs LFADS comparison): time per trial at batch 1 and batched
throughput against the number of bins, one line (median) and band (interquartile range of the calls) per
model and variant (metrics/latency.py)."""

from matplotlib.ticker import LogLocator, NullFormatter, NullLocator, StrMethodFormatter

from latentdyn.metrics.latency_goal import GOAL_BINS, GOAL_MS_PER_TRIAL, goal_check
from latentdyn.plots.common import plt

VARIANT_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1))]


def plot_latency(table, colours, fast, slow):
    """Left: ms per trial at batch 1 (log scale) with the 1 ms goal; right: trials per second at the
    throughput batch, each model in `colours[model]`, medians as lines over their quartiles as bands. The title names the device and the speed-up of the goal kind
    `fast` over the baseline kind `slow` (NDT over LFADS; kinds.latency_kinds) at GOAL_BINS bins."""
    if table.empty:
        raise ValueError("the latency table has no rows to draw")
    variants = dict.fromkeys(table["variant"])
    styles = {variant: VARIANT_STYLES[i % len(VARIANT_STYLES)] for i, variant in enumerate(variants)}
    fig, (per_trial, throughput) = plt.subplots(1, 2, figsize=(11, 4))
    for (model, variant), rows in table.groupby(["model", "variant"], sort=False):
        rows = rows.sort_values("bins")
        style = dict(color=colours[model], ls=styles[variant], marker="o", ms=4, label=f"{model}, {variant}")
        for ax, column in ((per_trial, "ms_per_trial"), (throughput, "trials_per_s")):
            ax.plot(rows["bins"], rows[column], **style)
            ax.fill_between(rows["bins"], rows[f"{column}_q25"], rows[f"{column}_q75"], color=colours[model],
                            alpha=0.15, lw=0)
    goal = f"goal on a GPU: {fast.upper()} <= {GOAL_MS_PER_TRIAL:g} ms"
    if measured_on_gpu(table):
        per_trial.axhline(GOAL_MS_PER_TRIAL, color="0.6", lw=0.8, ls="--", zorder=0)
        per_trial.annotate(goal, (0.02, GOAL_MS_PER_TRIAL), xycoords=("axes fraction", "data"), ha="left",
                           va="bottom", fontsize=7, color="0.4")
    else:  # a GPU goal drawn over CPU times would read as a verdict on them
        per_trial.annotate(f"measured on the CPU: the {goal} is not drawn", (0.02, 0.97), xycoords="axes fraction",
                           ha="left", va="top", fontsize=7, color="0.4")
    per_trial.set_ylabel("ms per trial, batch 1\n(median; band: IQR)")
    batches = ", ".join(str(b) for b in table["throughput_batch"].unique())
    throughput.set_ylabel(f"trials per second, batch {batches}\n(median; band: IQR)")
    bins = sorted(table["bins"].unique())
    for ax in (per_trial, throughput):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(bins, [str(b) for b in bins])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bins")
        ax.grid(True, which="major", color="0.9")
    throughput.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: lines stay visible
    fig.suptitle(_title(table, fast, slow), fontsize=10)
    fig.tight_layout()
    return fig


def measured_on_gpu(table):
    """Whether every row was timed on a GPU (metrics/latency.describe_device names a CPU "CPU, …")."""
    return not table["device"].str.startswith("CPU").any()


def _title(table, fast_kind, slow_kind):
    """The device, and the speed-up of the goal check when the table has both kinds at GOAL_BINS bins."""
    devices = ", ".join(table["device"].unique())
    summary = goal_check(table.to_dict("records"), fast_kind, slow_kind)
    if not summary:
        return f"Inference latency on {devices}"
    fast, slow = summary[fast_kind], summary[slow_kind]
    return (
        f"Inference latency on {devices}\nat {GOAL_BINS} bins, batch 1: {fast['model']} {fast['ms_per_trial']:.3g} ms "
        f"({fast['variant']}), {slow['model']} {slow['ms_per_trial']:.3g} ms ({slow['variant']}): "
        f"{fast_kind.upper()} {summary['speedup']:.1f}x faster"
    )
