"""Result tables as the report shows them: seeds' spread only where there are several seeds, rounded
rows, every column explained."""

import re

import numpy as np
import pandas as pd

from latentdyn.plots.tables import GLOSSARY, seed_summary, table_html


def text(page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def attractor_table(seeds):
    rows = [{"dataset": "lorenz", "model": f"{m}-L3", "latent_size": 3, "seed": s, "nll": 1.0 + s / 10 + i,
             "rate_r2": 0.5 + 0.1 * s} for i, m in enumerate(["gru", "node"]) for s in seeds]
    return pd.DataFrame(rows)


def test_several_seeds_give_mean_sd_and_n_per_configuration():
    summary = seed_summary(attractor_table([0, 1, 2]))
    gru = summary.loc[("lorenz", "gru-L3", 3)]
    assert gru[("rate_r2", "count")] == 3
    np.testing.assert_allclose(gru[("rate_r2", "mean")], 0.6)
    np.testing.assert_allclose(gru[("rate_r2", "std")], 0.1)
    page = text(table_html(attractor_table([0, 1, 2]), "attractor_study"))
    assert "lorenz gru-L3 3 3 1.1000 ± 0.1000 0.600 ± 0.100" in page  # n = 3, nll to 4 decimals, R² to 3
    assert "Every run (6 rows)" in page


def test_one_seed_never_claims_a_spread():
    assert seed_summary(attractor_table([0])) is None
    page = text(table_html(attractor_table([0]), "t"))
    assert "±" not in page and "One seed per configuration" in page


def test_every_column_is_explained_with_its_unit_and_missing_values_are_marked():
    table = pd.DataFrame({"dataset": ["mc_maze_5ms"], "model": ["smoothing"], "latent_size": [np.nan],
                          "seed": [0], "co-bps": [0.21049], "vel R2": [np.nan], "new_metric": [1.0]})
    page = text(table_html(table, "nlb_study"))
    assert "co-bps co-smoothing" in page and "bits/spike" in page
    assert "new_metric (not in the glossary)" in page
    assert "mc_maze_5ms smoothing – 0 0.210 –" in page  # rounded; NaN shown as –
    assert all(GLOSSARY[c][0] for c in GLOSSARY)


def test_a_table_without_seeds_is_shown_without_a_summary():
    latency = pd.DataFrame({"model": ["ndt"], "kind": ["ndt"], "variant": ["fp32 eager"], "bins": [35],
                            "ms_per_trial": [0.51418], "trials_per_s": [5542.7], "throughput_batch": [16],
                            "max_abs_diff": [0.0], "device": ["CPU, 1 thread"]})
    page = text(table_html(latency, "latency"))
    assert "ndt ndt fp32 eager 35 0.514 5543 16 0.000000" in page and "±" not in page
