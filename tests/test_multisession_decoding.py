"""Per-session decoding of stitched factors (README §10's protocol): within, across sessions, and the
validation NLL of each session."""

import numpy as np
import pytest

from latentdyn.metrics.multisession import across_r2, decoding_rows, validation_nll, within_r2


def session(seed, trials=30, bins=12, mixing=None):
    """Factors that encode velocity through `mixing` (shared when given), plus a little noise."""
    rng = np.random.default_rng(seed)
    velocity = rng.normal(size=(trials, bins, 2))
    mixing = rng.normal(size=(2, 4)) if mixing is None else mixing
    factors = velocity @ mixing + 0.05 * rng.normal(size=(trials, bins, 4))
    spikes = rng.normal(size=(trials, bins, 6))  # carries no velocity
    return factors, spikes, velocity


def test_shared_factors_decode_within_and_across_sessions_and_noise_does_not():
    mixing = np.random.default_rng(9).normal(size=(2, 4))
    rows = decoding_rows([session(s, mixing=mixing) for s in range(3)])
    for row in rows:
        assert row["factors_within"] > 0.95 and row["factors_across"] > 0.95
        assert row["smoothed_spikes"] < 0.1


def test_factors_in_unrelated_spaces_do_not_decode_across_sessions():
    (x0, _, y0), (x1, _, y1) = session(0), session(1)  # each its own mixing
    assert within_r2(x1, y1) > 0.95 and across_r2(x0, y0, x1, y1) < 0.5


def test_validation_nll_is_per_session_and_skips_cycled_copies():
    spikes = np.full((3, 2, 3), np.nan)
    spikes[:, :, :2] = 1.0  # session 0: two units, three trials
    spikes[:1, :, 2] = 0.0  # session 1: one unit, one trial (rows 1 and 2 are cycled copies)
    rates = np.ones((3, 2, 3))
    attrs = {"sessions": [{"n_heldin": 2}, {"n_heldin": 1}]}
    nll = validation_nll({"valid_spikes_heldin": spikes}, attrs, {"valid_rates_heldin": rates})
    assert nll == pytest.approx([1.0, 1.0])  # rate 1: 1 − n·log 1 + log n! = 1 for n in {0, 1}


def test_the_figure_draws_per_session_bars_from_both_tables():
    import pandas as pd

    from latentdyn.plots.multisession import plot_multisession

    study = pd.DataFrame({"dataset": [f"ms_s0{s}_20ms" for s in (0, 0, 1, 1)], "model": ["m", "m-S"] * 2,
                          "rate_r2": [0.5, 0.6, 0.4, 0.5], "co-bps": [0.1, 0.12, 0.2, 0.19]})
    decoding = pd.DataFrame({"model": ["m", "m", "r", "r"], "session": [0, 1, 0, 1], "factors_within": 0.8,
                             "factors_across": 0.7, "smoothed_spikes": 0.4, "valid_nll": [0.7, 0.72, 0.71, 0.73]})
    fig = plot_multisession(study, decoding)
    bars = [len(ax.patches) for ax in fig.axes]
    assert bars[0] >= 4 and bars[2] >= 2 * 5  # spikes once, within and across per model, per session
    # NLB datasets as sessions (the paper config's mc_maze_lms) have no _s<nn> in their names
    nlb = study.assign(dataset=["mc_maze_large_20ms"] * 2 + ["mc_maze_small_20ms"] * 2)
    labels = [tick.get_text() for tick in plot_multisession(nlb, decoding).axes[0].get_xticklabels()]
    assert labels == ["mc_maze_large", "mc_maze_small"]


def test_shared_factors_figure_draws_each_sessions_conditions_on_shared_axes():
    from latentdyn.plots.multisession import plot_shared_factors

    rng = np.random.default_rng(0)
    sessions = [(rng.normal(size=(12, 10, 5)), np.array(["a", "b", "c"] * 4)) for _ in range(3)]
    fig = plot_shared_factors(sessions, "toy")
    assert len(fig.axes) == 3 and all(len(ax.lines) == 2 * 3 for ax in fig.axes)  # a path and a dot per condition
    assert len({ax.get_xlim() for ax in fig.axes}) == 1


def test_trials_figure_draws_one_line_per_variant_at_the_sessions_trial_counts():
    import pandas as pd

    from latentdyn.plots.multisession import plot_gain_vs_trials

    counts = {"ms_s00_20ms": 86, "ms_s01_20ms": 43, "ms_s02_20ms": 14}
    rows = [{"dataset": d, "model": m, "seed": seed, "rate_r2": r2 + 0.01 * seed}
            for d, r2 in zip(counts, (0.7, 0.6, 0.3)) for m in ("m", "m-S") for seed in (0, 1)]
    rows.append({"dataset": "mc_maze_small_20ms", "model": "m", "seed": 0, "rate_r2": float("nan")})  # no truth
    fig = plot_gain_vs_trials(pd.DataFrame(rows), counts, {d: "ms 20 ms" for d in counts})
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert len(lines) == 2 and all(sorted(line.get_xdata()) == [14, 43, 86] for line in lines)
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["m, alone", "m, stitched"]
    assert "2 seeds" in ax.get_title()


def test_trials_figure_says_when_every_session_has_the_same_count():
    import pandas as pd

    from latentdyn.plots.multisession import plot_gain_vs_trials

    study = pd.DataFrame({"dataset": ["ms_s00_20ms", "ms_s00_20ms", "ms_s01_20ms", "ms_s01_20ms"],
                          "model": ["m", "m-S"] * 2, "rate_r2": [0.5, 0.6, 0.4, 0.5]})
    fig = plot_gain_vs_trials(study, {"ms_s00_20ms": 43, "ms_s01_20ms": 43})
    assert "all sessions have 43 training trials" in fig.axes[0].get_title()
