"""One Neural Latents Benchmark submission for every dataset of the NLB study, from the best run of each.

Layout (nlb_tools' `save_to_h5` of `make_eval_input`-style dicts, what the leaderboard reads): one HDF5
group per dataset and bin size, named as nlb_tools names it (`mc_maze`, `mc_maze_20`: metrics.nlb.
nlb_group_name), holding the rates of SUBMISSION_KEYS in spikes per bin, (trials, bins, units) float32.
These are the model output's own keys (docs/formats.md), so a group is a run's output.h5 cut to them.

Which run: per binned dataset, the run with the highest co-bps in the NLB study's table (SELECT_BY;
ties go to the first row). In the `val` phase that co-bps is scored on the val split, which is what the
benchmark's validation phase is for; in the `test` phase with public test targets it would be scored on
the test split, so the choice should come from a val-phase table (the rule says which table it used).
"""

import h5py
import numpy as np

from latentdyn.data.format import validate_model_output
from latentdyn.errors import InputError
from latentdyn.io import atomic_path, reading

SUBMISSION_KEYS = (
    "train_rates_heldin", "train_rates_heldout", "eval_rates_heldin", "eval_rates_heldout",
    "eval_rates_heldin_forward", "eval_rates_heldout_forward",
)
SELECT_BY = "co-bps"


def best_runs(table, select_by=SELECT_BY, path="<table>"):
    """The table's row of the best run of each dataset (highest `select_by`), in the table's order of
    datasets. InputError naming `path` if a dataset has no run with a value."""
    if select_by not in table.columns:
        raise InputError(path, select_by, "missing: the best run of each dataset is chosen by it")
    scored = table.dropna(subset=[select_by])
    unscored = [d for d in dict.fromkeys(table["dataset"]) if d not in set(scored["dataset"])]
    if unscored:
        raise InputError(path, select_by, f"no run of {unscored} has a value to choose by")
    return scored.loc[scored.groupby("dataset", sort=False)[select_by].idxmax()]


def submission_group(output, group, path="<output>"):
    """A run's output arrays cut to SUBMISSION_KEYS, as float32; InputError naming `path` for a missing key."""
    missing = [key for key in SUBMISSION_KEYS if key not in output]
    if missing:
        raise InputError(path, missing[0], f"missing: the submission's {group} group needs {list(SUBMISSION_KEYS)}")
    return {key: np.asarray(output[key], dtype=np.float32) for key in SUBMISSION_KEYS}


def write_submission(path, groups):
    """`groups`: group name -> {key: array}, written as nlb_tools' save_to_h5 does (one dataset per key)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for group, arrays in groups.items():
            for key, value in arrays.items():
                f.create_dataset(f"{group}/{key}", data=value, compression="gzip")


def read_submission(path):
    with reading(path, "NLB submission"), h5py.File(path, "r") as f:
        return {group: {key: node[()] for key, node in f[group].items()} for group in f}


def check_submission(submission, datasets, path="<submission>"):
    """What the leaderboard needs of a submission (`submission`: group -> arrays) for `datasets` (group ->
    that binned dataset's arrays): a group per dataset and no other, every SUBMISSION_KEYS key and no
    other, float32 rates of the dataset's trials, bins and units (validate_model_output), finite and
    non-negative. InputError naming `path` and the group/key."""
    for group in submission:
        if group not in datasets:
            raise InputError(path, group, f"a group the submission should not have (datasets: {sorted(datasets)})")
    for group, data in datasets.items():
        if group not in submission:
            raise InputError(path, group, "missing: every dataset of the study needs its group")
        arrays = submission[group]
        for key in arrays:
            if key not in SUBMISSION_KEYS:
                raise InputError(path, f"{group}/{key}", f"not a submission key ({', '.join(SUBMISSION_KEYS)})")
        for key in SUBMISSION_KEYS:
            if key not in arrays:
                raise InputError(path, f"{group}/{key}", "missing: the leaderboard expects it")
            if np.asarray(arrays[key]).dtype != np.float32:
                raise InputError(path, f"{group}/{key}", f"dtype {np.asarray(arrays[key]).dtype}, expected float32")
        validate_model_output(arrays, data, f"{path}:{group}")
