"""The generative study's figure (metrics/generation.py, scripts/generative_study.py): per model, its
codes' top two PCs coloured by reach angle (withheld conditions marked), and for each withheld condition
the reach decoded from its generated trials against the real one and against the nearest seen condition."""

import numpy as np

from latentdyn.plots.common import legend_below, plt


def _top_pcs(codes):
    centred = codes - codes.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def plot_generative(data, colours):
    """`data`: the figure data (name -> array; generative_study.py writes it); `colours`: model -> colour."""
    runs = sorted(name.removesuffix("/codes") for name in data if name.endswith("/codes"))
    withheld = [int(c) for c in data["withheld"]]
    fig, axes = plt.subplots(1, len(runs) + 1, figsize=(4 * (len(runs) + 1), 4.5), squeeze=False)
    angles, held = data["angles"], data["withheld_trial"].astype(bool)
    for ax, run in zip(axes[0], runs):
        pcs = _top_pcs(data[f"{run}/codes"])
        points = ax.scatter(pcs[~held, 0], pcs[~held, 1], c=angles[~held], cmap="hsv", vmin=0, vmax=2 * np.pi, s=12)
        ax.scatter(pcs[held, 0], pcs[held, 1], c=angles[held], cmap="hsv", vmin=0, vmax=2 * np.pi, s=40, marker="x")
        ax.set(title=f"{run}\ncodes' top PCs", xlabel="PC 1", ylabel="PC 2")
    fig.colorbar(points, ax=axes[0][: len(runs)].tolist(), label="reach angle (rad); x = withheld condition")
    ax = axes[0][-1]
    for condition in withheld:
        first = condition == withheld[0]
        real = np.cumsum(data[f"real/velocity_{condition}"], axis=0)
        ax.plot(real[:, 0], real[:, 1], color="black", lw=2, label="real (withheld trials)" if first else None)
        nearest = np.cumsum(data[f"nearest seen/velocity_{condition}"], axis=0)
        ax.plot(nearest[:, 0], nearest[:, 1], color="grey", ls="--", label="nearest seen condition" if first else None)
        for run in runs:
            model = run.split("/")[0]
            decoded = np.cumsum(data[f"{run}/velocity_{condition}"], axis=0)
            ax.plot(decoded[:, 0], decoded[:, 1], color=colours.get(model), label=f"{run} generated" if first else None)
    ax.set(title="withheld conditions:\nreach decoded from generated trials", xlabel="x (summed velocity)", ylabel="y",
           aspect="equal")
    legend_below(fig, [ax])
    return fig
