"""The NLB submission (metrics/submission.py, rule nlb_submission): the best run per dataset by co-bps,
the checker of the leaderboard's groups, keys and shapes, and the file the workflow writes for the tiny
config's simulated reaching set, scored again from the file itself."""

import h5py
import numpy as np
import pandas as pd
import pytest
from random_counts import poisson_counts

from latentdyn.errors import InputError
from latentdyn.metrics.submission import SUBMISSION_KEYS, best_runs, check_submission, read_submission
from workflow_api import TINY_CONFIG, run_workflow

DATA = poisson_counts({"train": 6, "eval": 4}, heldout=3, heldin=5, bins=8, forward_bins=3, seed=0)


def rates_like(data):
    """Rates for every submission key, shaped as the test phase's data implies (no eval held-out spikes:
    trials from the split's held-in spikes, units from the training split's)."""
    rates = {}
    for key in SUBMISSION_KEYS:
        split, units = key.split("_rates_")
        window = "_forward" if units.endswith("_forward") else ""
        group = units.removesuffix("_forward")
        shape = (len(data[f"{split}_spikes_heldin"]), data[f"train_spikes_{group}{window}"].shape[1],
                 data[f"train_spikes_{group}"].shape[2])
        rates[key] = np.full(shape, 0.5, np.float32)
    return rates


def test_the_best_run_of_each_dataset_has_the_highest_co_bps():
    table = pd.DataFrame({"dataset": ["a", "a", "b", "b", "c"], "model": ["x", "y", "x", "y", "x"],
                          "seed": 0, "co-bps": [0.1, 0.3, 0.2, np.nan, 0.0]})
    assert best_runs(table)[["dataset", "model"]].values.tolist() == [["a", "y"], ["b", "x"], ["c", "x"]]
    with pytest.raises(InputError, match="no run of \\['c'\\]"):
        best_runs(table.assign(**{"co-bps": [0.1, 0.3, 0.2, np.nan, np.nan]}), path="t.csv")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s["mc_maze_20"].pop("eval_rates_heldout_forward"), "mc_maze_20/eval_rates_heldout_forward"),
        (lambda s: s["mc_maze_20"].update(eval_rates_heldout=np.zeros((4, 8, 2), np.float32)), "eval_rates_heldout"),
        (lambda s: s["mc_maze_20"].update(train_rates_heldin=np.zeros((6, 8, 5), np.float64)), "float32"),
        (lambda s: s["mc_maze_20"].update(eval_latents=np.zeros((4, 8, 2), np.float32)), "not a submission key"),
        (lambda s: s.update(mc_rtt_20={}), "mc_rtt_20"),
        (lambda s: s.pop("mc_maze_20"), "mc_maze_20"),
        (lambda s: s["mc_maze_20"]["eval_rates_heldin"].fill(np.nan), "finite"),
    ],
)
def test_the_checker_names_what_the_leaderboard_would_refuse(change, named):
    submission = {"mc_maze_20": rates_like(DATA)}
    check_submission(submission, {"mc_maze_20": DATA})
    change(submission)
    with pytest.raises(InputError, match=named):
        check_submission(submission, {"mc_maze_20": DATA}, "submission.h5")


def test_the_workflow_writes_a_checked_and_scored_submission(tmp_path):
    run_workflow(tmp_path, [TINY_CONFIG], executor="local", targets=["results/nlb/submission.h5"])
    submission = read_submission(tmp_path / "results/nlb/submission.h5")
    summary = pd.read_csv(tmp_path / "results/tables/nlb_submission.csv")
    metrics = pd.read_csv(tmp_path / "results/tables/nlb_study.csv")
    assert list(submission) == ["reaching_20"] and set(submission["reaching_20"]) == set(SUBMISSION_KEYS)
    row = summary.iloc[0]
    assert (row["group"], row["dataset"], row["model"], row["phase"]) == ("reaching_20", "reaching_20ms", "smoothing", "val")
    # scored from the file, the same numbers as the run's own metrics
    for metric in ("co-bps", "vel R2", "psth R2", "fp-bps"):
        assert row[metric] == pytest.approx(metrics.loc[0, metric], rel=1e-5)
    with h5py.File(tmp_path / "results/data/binned/reaching_20ms.h5") as data:
        assert submission["reaching_20"]["eval_rates_heldout"].shape == data["eval_spikes_heldout"].shape
