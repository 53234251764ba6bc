"""Sedler et al. figures on tiny tables and arrays: seeds drawn as seeds (no spread from one seed), labelled
3-D axes and time in the systems' own units, eigenvalue panels with the legend off the data and a note where a model has no
fixed point."""

import matplotlib.collections
import numpy as np
import pandas as pd
import pytest

from latentdyn.data.attractors import make_attractor_dataset
from latentdyn.plots import attractors

BIN_S = 0.015


def metric_table(seeds):
    return pd.DataFrame([
        {"dataset": system, "model": f"{m}-L{k}", "latent_size": k, "seed": s, "rate_r2": 0.5 + 0.1 * s + 0.01 * k + 0.2 * (m == "node")}
        for system in ("lorenz", "rossler") for m in ("gru", "node") for k in (3, 10) for s in seeds
    ])


def offsets(ax):
    """The points of every scatter collection of `ax` (seaborn's seed dots and mean markers)."""
    return [c.get_offsets() for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]


def test_several_seeds_draw_each_seeds_point_and_the_mean():
    fig = attractors.plot_metric_vs_latent(metric_table([0, 1, 2]), "rate_r2")
    ax = fig.axes[0]
    seeds = offsets(ax)
    assert sum(len(points) for points in seeds) == 2 * 2 * 3  # models × sizes × seeds, one dot each
    means = sorted(line.get_ydata().tolist() for line in ax.get_lines() if len(line.get_xdata()))
    np.testing.assert_allclose(means, [[0.63, 0.7], [0.83, 0.9]])  # GRU, NODE: the mean of seeds 0–2 per size
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["GRU", "NODE"]
    assert "mean of 3 seeds" in ax.get_title()


def test_one_seed_draws_no_spread():
    fig = attractors.plot_metric_vs_latent(metric_table([0]), "rate_r2")
    ax = fig.axes[0]
    assert offsets(ax) == []  # no seed dots beside the means
    assert not [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]  # no error bars
    assert not [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]  # no bands
    assert "one seed" in ax.get_title()


@pytest.fixture(scope="module")
def lorenz():
    return make_attractor_dataset("lorenz", n_neurons=6, n_trials=10, n_steps=20,
                                  split_sizes={"train": 6, "valid": 2, "test": 2}, seed=0)[0]


def test_trajectory_axes_say_raw_latents_or_components_and_time_in_the_systems_units(lorenz):
    runs = [("gru-L3", np.zeros((2, 20, 3)) + np.arange(20)[:, None], np.zeros((1, 3))),
            ("gru-L10", np.random.default_rng(0).normal(size=(2, 20, 10)), np.zeros((0, 10)))]
    fig = attractors.plot_latent_trajectories(lorenz, runs, "lorenz", BIN_S)
    truth, small, large = fig.axes
    assert truth.get_xlabel() == "latent 1" and small.get_zlabel() == "latent 3" and large.get_xlabel() == "PC 1"
    assert f"20 bins of dt = {BIN_S:.3g} ({20 * BIN_S:.3g} system time units)" in fig._suptitle.get_text()
    assert " ms" not in fig._suptitle.get_text()  # the systems are dimensionless
    example = attractors.plot_example_data(lorenz, "lorenz", BIN_S)
    assert example.axes[1].get_xlabel().startswith("time (system time units")
    assert example.axes[1].get_xlim()[1] == pytest.approx(BIN_S * 20)


def test_eigenvalue_legend_is_off_the_axes_and_a_model_without_fixed_points_says_so(lorenz):
    runs = [("gru-L3", np.array([[0.9, 0.5 + 0.5j, 0.5 - 0.5j]])), ("node-L3", np.zeros((0, 3), complex))]
    fig = attractors.plot_fixed_point_eigenvalues(lorenz, runs, "lorenz", BIN_S)
    assert all(ax.get_legend() is None for ax in fig.axes) and fig.legends
    assert [t.get_text() for t in fig.axes[1].texts] == ["no fixed point found:\nonly the truth is drawn"]
    assert not fig.axes[0].texts
    assert "exp(dt·J)" in fig._suptitle.get_text()
