"""Figures of Sedler, Versteeg & Pandarinath 2023 (figure numbers as in the paper)."""

import numpy as np

from latentdyn.plots.common import plt

# The attractor study's models by config name (both of the sequential autoencoder kind) and the truth
COLOURS = {"gru": "tab:blue", "node": "tab:orange", "truth": "black"}
OTHER_COLOUR = "tab:green"
METRIC_LABELS = {"nll": "Poisson NLL per bin", "rate_r2": "rate R²", "state_r2": "state R² (true → inferred)"}


def plot_example_data(data, system, trial=0):
    """Fig. 1a: one trial's true latent trajectory, true rates and Poisson spikes."""
    latents = data["train_true_latents"][trial]
    rates = data["train_true_rates_heldin"][trial]
    spikes = data["train_spikes_heldin"][trial]
    fig = plt.figure(figsize=(11, 3.2))
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    ax.plot(*data["train_true_latents"][:20].reshape(-1, 3).T, color="0.85", lw=0.5)
    ax.plot(*latents.T, color="black", lw=1.5)
    ax.set_title(f"{system}: latent trajectory")
    for col, (image, title) in enumerate(((rates, "true rates (spikes/bin)"), (spikes, "spike counts")), start=2):
        ax = fig.add_subplot(1, 3, col)
        shown = ax.imshow(image.T, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set(title=title, xlabel="time bin", ylabel="neuron")
        fig.colorbar(shown, ax=ax)
    return fig


def plot_metric_vs_latent(table, metric):
    """Figs. 1c, 2a, 2c: a metric against latent size, GRU vs NODE, mean ± SD over seeds."""
    table = table.assign(family=table["model"].str.split("-L").str[0])
    systems = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(systems), figsize=(4 * len(systems), 3.2), squeeze=False)
    for ax, system in zip(axes[0], systems):
        for family, rows in table[table["dataset"] == system].groupby("family"):
            stats = rows.groupby("latent_size")[metric].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=family.upper(), color=_colour(family))
        sizes = sorted(table["latent_size"].unique())
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(int(k)) for k in sizes])
        ax.minorticks_off()
        ax.set(title=system, xlabel="latent size", ylabel=METRIC_LABELS.get(metric, metric))
        ax.legend()
    fig.tight_layout()
    return fig


def _projection(latents):
    """Affine map to 3-D: identity for ≤3-D states, else the top principal components."""
    flat = latents.reshape(-1, latents.shape[-1])
    mean = flat.mean(axis=0)
    if flat.shape[1] <= 3:
        return lambda x: np.pad(x - mean, [(0, 0)] * (x.ndim - 1) + [(0, 3 - flat.shape[1])])
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    return lambda x: (x - mean) @ components[:3].T


def plot_latent_trajectories(data, runs, system, n_trials=20):
    """Figs. 1d, 2b, 2d, 3a: true and inferred 3-D latent trajectories with fixed points (×)."""
    panels = [("truth", data["eval_true_latents"][:n_trials], data["true_fixed_points"])] + [
        (name, latents[:n_trials], points) for name, latents, points in runs
    ]
    fig = plt.figure(figsize=(3.6 * len(panels), 3.6))
    for i, (name, latents, points) in enumerate(panels, start=1):
        project = _projection(latents)
        ax = fig.add_subplot(1, len(panels), i, projection="3d")
        for trial in project(latents):
            ax.plot(*trial.T, color=_colour(name), lw=0.6, alpha=0.7)
        if len(points):
            ax.scatter(*project(points).T, marker="x", s=60, color="red", depthshade=False)
        ax.set_title(f"{system}: {name}\n{len(points)} fixed point{'' if len(points) == 1 else 's'}", fontsize=9)
    return fig


def plot_fixed_point_eigenvalues(data, runs, system):
    """Figs. 3b–e: Jacobian eigenvalues at fixed points, model vs the discretised truth (I + dt·J)."""
    truth = (data["true_jacobian_eigvals_real"] + 1j * data["true_jacobian_eigvals_imag"]).ravel()
    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 3.4), squeeze=False)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for ax, (name, eigvals) in zip(axes[0], runs):
        ax.plot(circle.real, circle.imag, color="0.7", lw=0.8)
        ax.scatter(truth.real, truth.imag, marker="o", facecolors="none", edgecolors="black", label="truth")
        if eigvals.size:
            ax.scatter(eigvals.real.ravel(), eigvals.imag.ravel(), marker="x", color=_colour(name), label=name)
        ax.set(title=f"{system}: {name}", xlabel="Re λ", ylabel="Im λ", aspect="equal")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _colour(model_name):
    """The colour of an attractor study model, `<name>[-L<k>]`, or of the truth."""
    return COLOURS.get(model_name.split("-L")[0], OTHER_COLOUR)
