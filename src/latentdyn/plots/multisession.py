"""The multisession figure (issue 18, the tutorial's per-session bars; README §10): per session, what
stitching changes against the same model on that session alone, how well velocity decodes from the
stitched factors within and across sessions and from smoothed spikes, and each stitched model's
validation NLL (PCR vs random read-in when the study has both); every session's factors in the one
space they share (`plot_shared_factors`); and experiment 2's rate R² against each session's training-trial
count, stitched vs alone (`plot_gain_vs_trials`)."""

import re

import numpy as np
import pandas as pd
import seaborn as sns

from latentdyn.plots.common import draw_seeds_and_mean, panel_grid, seeds_note

SESSION = re.compile(r"_s(?P<session>[0-9]+)_[0-9]+ms$")
R2_FLOOR = -1.0


def session_label(dataset):
    """The session's index for a simulated or user session (<set>_s<nn>_<bin>ms), else the dataset's own
    name without its bin (an NLB dataset used as a session, e.g. mc_maze_large_20ms -> mc_maze_large)."""
    match = SESSION.search(dataset)
    return int(match["session"]) if match else re.sub(r"_[0-9]+ms$", "", dataset)


def plot_multisession(study, decoding):
    """`study`: multisession_study.csv (a row per session dataset and model, <model>-S the stitched run's
    part); `decoding`: the stitched runs' decoding.csv rows."""
    study = study.assign(
        session=study["dataset"].map(session_label),
        base=study["model"].str.removesuffix("-S"),
        training=study["model"].str.endswith("-S").map({True: "stitched", False: "alone"}),
    )
    several = decoding["model"].nunique() > 1
    spikes = decoding.drop_duplicates("session").assign(source="smoothed spikes", R2=lambda t: t["smoothed_spikes"])
    factors = [
        decoding.assign(source=f"factors, {where} session{'s' if where == 'across' else ''}"
                        + (decoding["model"].map(lambda m: f" ({m})") if several else ""), R2=decoding[f"factors_{where}"])
        for where in ("within", "across")
    ]
    long = pd.concat([spikes, *factors], ignore_index=True)
    fig, axes = panel_grid(4, 4.2, 3.2)
    for ax, metric in zip(axes, ("rate_r2", "co-bps")):
        sns.barplot(study, x="session", y=metric, hue=study["base"] + ", " + study["training"], ax=ax, errorbar=None)
        ax.set(title=f"{metric} per session", ylabel=metric)
    long["R2"] = long["R2"].clip(lower=R2_FLOOR)  # factors in unrelated spaces decode far below 0 across sessions
    sns.barplot(long, x="session", y="R2", hue="source", ax=axes[2], errorbar=None)
    axes[2].axhline(0, color="black", linewidth=0.8)
    axes[2].set(title="velocity decoding (ridge, grouped 5-fold CV)", ylabel=f"R² (drawn at {R2_FLOOR} if below)",
                ylim=(min(long["R2"].min(), 0), 1))
    sns.barplot(decoding, x="session", y="valid_nll", hue="model", ax=axes[3], errorbar=None)
    low = decoding["valid_nll"].min()
    axes[3].set(title="stitched validation NLL per bin (lower is better)", ylim=(low * 0.95, decoding["valid_nll"].max() * 1.02))
    for ax in axes:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.tight_layout()
    return fig


def plot_shared_factors(sessions, title):
    """Experiment 4: each session's condition-averaged factors on the top two PCs of all sessions' together,
    one panel per session on shared axes, a colour per condition: stitched factors of a condition should
    trace the same path in every session. `sessions`: per session (factors trials × bins × k, each trial's
    condition name)."""
    means = [{c: factors[labels == c].mean(0) for c in np.unique(labels)} for factors, labels in sessions]
    stacked = np.concatenate([m for session in means for m in session.values()])
    centre = stacked.mean(0)
    _, _, components = np.linalg.svd(stacked - centre, full_matrices=False)
    conditions = sorted({c for session in means for c in session})
    colours = dict(zip(conditions, sns.color_palette("husl", len(conditions))))
    fig, axes = panel_grid(len(sessions), 3.0, 3.0)
    projected = [{c: (m - centre) @ components[:2].T for c, m in session.items()} for session in means]
    everything = np.concatenate([p for session in projected for p in session.values()])
    low, high = everything.min(0), everything.max(0)
    for s, (ax, session) in enumerate(zip(axes, projected)):
        for condition, path in session.items():
            ax.plot(path[:, 0], path[:, 1], color=colours[condition], linewidth=1)
            ax.plot(*path[0], "o", color=colours[condition], markersize=2)
        ax.set(title=f"session {s}", xlim=(low[0], high[0]), ylim=(low[1], high[1]), xticks=[], yticks=[])
    axes[0].set(xlabel="factor PC 1", ylabel="factor PC 2")
    fig.suptitle(f"{title}: condition-averaged factors (dot: window start), one colour per condition")
    fig.tight_layout()
    return fig


def plot_gain_vs_trials(study, trial_counts, sets=None):
    """Experiment 2 (issue 18): does a session with few trials gain more from stitching? Rate R² against the
    true rates vs the session's number of training trials, one line per variant (`<m>` alone, `<m>-S` its
    part of the stitched run), each seed a small dot and the mean over seeds a large marker when there are
    several (draw_seeds_and_mean); one panel per multisession set.

    `study`: multisession_study.csv; `trial_counts`: session dataset (<session>_<bin>ms) -> its training
    trials (the first dimension of its binned file's train_spikes_heldin); `sets`: session dataset -> the
    multisession set (and bin size) it belongs to, for the panels (default: one panel). Rows of datasets
    missing from `trial_counts`, and rows without true rates (NLB sessions), are left out.

    The workflow plans this figure whenever the multisession study runs, not only when the config gives
    its sessions different trial counts: a user's sessions differ or not by what their NWB files hold, which
    is known only once they are binned. Where a panel's sessions all have the same count the panel says so
    in its title ("all sessions have n training trials"): its points, one x, show no trend."""
    sets = sets or {}
    table = study[study["dataset"].isin(list(trial_counts))].dropna(subset=["rate_r2"])
    table = table.assign(
        trials=table["dataset"].map(trial_counts).astype(int),
        variant=table["model"].str.removesuffix("-S")
        + table["model"].str.endswith("-S").map({True: ", stitched", False: ", alone"}),
        panel=table["dataset"].map(lambda d: sets.get(d, "")),
    )
    variants = sorted(table["variant"].unique())
    palette = dict(zip(variants, sns.color_palette("tab10", len(variants))))
    panels = sorted(table["panel"].unique()) or [""]
    fig, axes = panel_grid(len(panels), 4.6, 3.4)
    for ax, panel in zip(axes, panels):
        rows = table[table["panel"] == panel]
        if rows.empty:
            ax.text(0.5, 0.5, "no session with true rates", ha="center", va="center", transform=ax.transAxes)
            ax.set(xticks=[], yticks=[])
            continue
        n = draw_seeds_and_mean(ax, rows, "trials", "rate_r2", "variant", palette)
        counts = sorted(rows["trials"].unique())
        same = f"all sessions have {counts[0]} training trials: no trend to read" if len(counts) == 1 else ""
        ax.set(xticks=counts, xlabel="training trials of the session", ylabel="rate R² vs true rates",
               title="\n".join(t for t in (panel, same, seeds_note(n)) if t))
        ax.legend(fontsize=7, title=None)
    fig.suptitle("Fewer trials per session: stitched vs alone", fontsize=10)
    fig.tight_layout()
    return fig
