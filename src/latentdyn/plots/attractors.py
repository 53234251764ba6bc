"""Figures of Sedler, Versteeg & Pandarinath 2023 (figure numbers as in the paper)."""

import numpy as np

from latentdyn.plots.common import draw_seeds_and_mean, legend_below, panel_grid, plt, seeds_note

# The attractor study's models by config name (both of the sequential autoencoder kind) and the truth
COLOURS = {"gru": "tab:blue", "node": "tab:orange", "truth": "black"}
OTHER_COLOUR = "tab:green"
METRIC_LABELS = {"nll": "Poisson NLL (nats per neuron-bin)", "rate_r2": "rate R²",
                 "state_r2": "state R² (true → inferred)"}
EIGENVALUE_CONVENTION = "eigenvalues of the one-bin map (model: its step; truth: exp(dt·J))"
# The systems are dimensionless: a bin is one sampling step dt in the system's own time units (Rössler's
# 0.169: 35 steps per period, reference §4), stored as the binned file's `bin_width_s`. Not seconds.
TIME_UNIT = "system time units"


def duration_text(dt, n_bins):
    """'n bins of dt = … (T system time units)': how long a trial is, in the only time the systems have."""
    return f"{n_bins} bins of dt = {dt:.3g} ({dt * n_bins:.3g} {TIME_UNIT})"


def plot_example_data(data, system, dt, trial=0):
    """Fig. 1a: one trial's true latent trajectory (raw simulator coordinates), true rates and spikes."""
    latents = data["train_true_latents"][trial]
    rates = data["train_true_rates_heldin"][trial]
    spikes = data["train_spikes_heldin"][trial]
    fig = plt.figure(figsize=(11, 3.4))
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    ax.plot(*data["train_true_latents"][:20].reshape(-1, 3).T, color="0.85", lw=0.5)
    ax.plot(*latents.T, color="black", lw=1.5)
    ax.scatter(*latents[0], color="black", s=12, depthshade=False)
    _label_3d(ax, "latent")
    ax.set_title(f"{system}: true latent state, one trial\n{duration_text(dt, len(latents))} (dot: start)", fontsize=9)
    for col, (image, title) in enumerate(((rates, "true rates (spikes/bin)"), (spikes, "spike counts")), start=2):
        ax = fig.add_subplot(1, 3, col)
        shown = ax.imshow(image.T, aspect="auto", cmap="viridis", interpolation="nearest",
                          extent=(0.0, dt * len(image), len(image.T) - 0.5, -0.5))
        ax.set(title=title, xlabel=f"time ({TIME_UNIT}; bins of dt = {dt:.3g})", ylabel="neuron")
        fig.colorbar(shown, ax=ax)
    fig.tight_layout()
    return fig


def plot_metric_vs_latent(table, metric):
    """Figs. 1c, 2a, 2c: a metric against latent size, GRU vs NODE, each seed and the mean over seeds."""
    table = table.assign(generator=table["model"].str.split("-L").str[0].str.upper())
    palette = {name: _colour(name.lower()) for name in dict.fromkeys(table["generator"])}
    systems = list(dict.fromkeys(table["dataset"]))
    sizes = sorted(table["latent_size"].unique())
    fig, axes = panel_grid(len(systems), 4, 3.4)
    for ax, system in zip(axes, systems):
        n = draw_seeds_and_mean(ax, table[table["dataset"] == system], "latent_size", metric, "generator", palette)
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(int(k)) for k in sizes])
        ax.minorticks_off()
        ax.set(xlabel="latent size", ylabel=METRIC_LABELS.get(metric, metric))
        ax.set_title(f"{system}\n({seeds_note(n)})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _projection(latents):
    """(affine map to 3-D, axis name): the raw state for ≤3-D states, else its top principal components."""
    flat = latents.reshape(-1, latents.shape[-1])
    mean = flat.mean(axis=0)
    if flat.shape[1] <= 3:
        return lambda x: np.pad(x - mean, [(0, 0)] * (x.ndim - 1) + [(0, 3 - flat.shape[1])]), "latent"
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    return lambda x: (x - mean) @ components[:3].T, "PC"


def _label_3d(ax, name):
    ax.set(xlabel=f"{name} 1", ylabel=f"{name} 2", zlabel=f"{name} 3")
    ax.tick_params(labelsize=6)


def plot_latent_trajectories(data, runs, system, dt, n_trials=20):
    """Figs. 1d, 2b, 2d, 3a: true and inferred 3-D latent trajectories (raw latents up to 3-D, else their
    top principal components, as the axes say) with fixed points (×)."""
    panels = [("truth", data["eval_true_latents"][:n_trials], data["true_fixed_points"])] + [
        (name, latents[:n_trials], points) for name, latents, points in runs
    ]
    fig, axes = panel_grid(len(panels), 3.6, 3.6, projection="3d")
    for ax, (name, latents, points) in zip(axes, panels):
        project, axis_name = _projection(latents)
        for trial in project(latents):
            ax.plot(*trial.T, color=_colour(name), lw=0.6, alpha=0.7)
            ax.scatter(*trial[0], color=_colour(name), s=4, depthshade=False)
        if len(points):
            ax.scatter(*project(points).T, marker="x", s=60, color="red", depthshade=False)
        _label_3d(ax, axis_name)
        ax.set_title(f"{system}: {name}\n{len(points)} fixed point{'' if len(points) == 1 else 's'}", fontsize=9)
    fig.suptitle(f"{len(panels[0][1])} test trials, each {duration_text(dt, data['eval_true_latents'].shape[1])}"
                 " (dot: start; red ×: fixed point)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_fixed_point_eigenvalues(data, runs, system, dt):
    """Figs. 3b–e: eigenvalues at fixed points of the map over one bin, the model's step against the true
    flow's exact one-bin map exp(dt·J) (data.attractors.one_step_eigenvalues): the same terms for both."""
    truth = (data["true_step_eigvals_real"] + 1j * data["true_step_eigvals_imag"]).ravel()
    fig, axes = panel_grid(len(runs), 3.4, 3.4)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for ax, (name, eigvals) in zip(axes, runs):
        ax.plot(circle.real, circle.imag, color="0.7", lw=0.8, label="|λ| = 1")
        ax.scatter(truth.real, truth.imag, marker="o", facecolors="none", edgecolors="black", label="truth")
        if eigvals.size:
            ax.scatter(eigvals.real.ravel(), eigvals.imag.ravel(), marker="x", color=_colour(name), label="model")
        else:
            ax.text(0.5, 0.04, "no fixed point found:\nonly the truth is drawn", transform=ax.transAxes,
                    ha="center", va="bottom", fontsize=7, color="0.3")
        ax.set(title=f"{system}: {name}", xlabel="Re λ", ylabel="Im λ", aspect="equal")
    fig.suptitle(f"{EIGENVALUE_CONVENTION}, dt = {dt:.3g} {TIME_UNIT}", fontsize=9)
    fig.tight_layout()
    legend_below(fig, axes)
    return fig


def _colour(model_name):
    """The colour of an attractor study model, `<name>[-L<k>]`, or of the truth."""
    return COLOURS.get(model_name.split("-L")[0], OTHER_COLOUR)
