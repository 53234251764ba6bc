"""The NLB metrics figure on tiny tables: seeds drawn as seeds, a zero line, simulated data labelled, and
panels in rows of at most three."""

import matplotlib.collections
import pandas as pd

from latentdyn.plots.nlb import plot_nlb_metrics

COLOURS = {"smoothing": "tab:gray", "lfads": "tab:red"}


def nlb_table(seeds):
    return pd.DataFrame([
        {"dataset": dataset, "model": model, "seed": s, "co-bps": 0.1 + 0.01 * s, "vel R2": 0.5, "psth R2": 0.4,
         "fp-bps": -0.05 + 0.01 * s}
        for dataset in ("reaching_20ms", "mc_maze_20ms") for model in COLOURS for s in seeds
    ])


def seed_dots(ax):
    return [tuple(p) for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)
            for p in c.get_offsets()]


def mean_markers(ax):
    return [(x, y) for line in ax.get_lines() if line.get_marker() == "D"
            for x, y in zip(line.get_xdata(), line.get_ydata())]


def test_several_seeds_draw_each_seed_and_the_mean():
    fig = plot_nlb_metrics(nlb_table([0, 1, 2]), COLOURS)
    co_bps = fig.axes[0]
    assert len(seed_dots(co_bps)) == 2 * 2 * 3  # a dot per dataset, model and seed
    means = mean_markers(co_bps)
    assert len(means) == 2 * 2 and all(abs(y - 0.11) < 1e-9 for _, y in means)  # a mean per dataset and model
    assert {x for x, _ in means} == {x for x, _ in seed_dots(co_bps)}  # each beside its own seeds
    assert "mean of 3 seeds" in fig._suptitle.get_text()


def test_one_seed_draws_the_value_alone_without_error_bars():
    fig = plot_nlb_metrics(nlb_table([0]), COLOURS)
    co_bps = fig.axes[0]
    assert not seed_dots(co_bps) and len(mean_markers(co_bps)) == 2 * 2  # the values alone
    assert not [c for c in co_bps.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert not [line for line in co_bps.get_lines() if len(line.get_xdata()) == 2
                and line.get_xdata()[0] == line.get_xdata()[1]]  # no vertical error segments
    assert "one seed" in fig._suptitle.get_text()


def test_zero_line_simulated_label_and_a_grid():
    fig = plot_nlb_metrics(nlb_table([0]), COLOURS, simulated=["reaching_20ms"])
    assert len(fig.axes) == 4 and len({ax.get_position().x0.round(3) for ax in fig.axes}) == 2  # 2 × 2
    fp_bps = next(ax for ax in fig.axes if ax.get_title() == "fp-bps")
    assert any(list(line.get_ydata()) == [0, 0] for line in fp_bps.get_lines())
    assert fp_bps.get_ylabel() == "fp-bps (bits/spike)"
    ticks = [t.get_text() for t in fp_bps.get_xticklabels()]
    assert ticks == ["reaching_20ms\n(simulated)", "mc_maze_20ms"]
