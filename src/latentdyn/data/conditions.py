"""Condition-structured synthetic datasets: trials that repeat a condition's true rates, split balanced by
condition, written with the binned format's `{split}_trial_ids` and `{split}_cond_idx/<i>` keys.

Trial `t` of a dataset with `trials_per_condition` repeats belongs to condition `t // trials_per_condition`
(trial ids are rows of that trial table).
"""

import numpy as np


def balanced_split(n_conditions, trials_per_condition, sizes, rng):
    """Disjoint trial ids for each split, every split as evenly spread over conditions as its size allows.

    `sizes` maps split name -> number of trials, in order; a last entry of None takes the trials left.
    Each split holds floor(n / C) or ceil(n / C) trials of every condition (C = n_conditions): one random
    order of each condition's trials is cut at cumulative per-condition quotas, and a random priority of
    conditions decides which conditions get the remainder's extra trial. Returns name -> sorted ids.
    """
    n_trials = n_conditions * trials_per_condition
    names, counts = list(sizes), list(sizes.values())
    if counts and counts[-1] is None:
        counts[-1] = n_trials - sum(counts[:-1])
    if any(c is None or c < 0 for c in counts) or sum(counts) != n_trials:
        raise ValueError(f"split sizes {sizes} do not add up to {n_conditions} conditions x "
                         f"{trials_per_condition} trials = {n_trials}")
    order = np.stack([rng.permutation(trials_per_condition) for _ in range(n_conditions)])
    rank = rng.permutation(n_conditions)  # which conditions take the extra trial of a remainder first

    def quota(total):  # per-condition number of trials among the first `total` of the cumulative split
        return total // n_conditions + (rank < total % n_conditions)

    splits, done = {}, 0
    for name, count in zip(names, counts):
        start, stop = quota(done), quota(done + count)
        ids = [c * trials_per_condition + order[c, start[c]:stop[c]] for c in range(n_conditions)]
        splits[name] = np.sort(np.concatenate(ids)).astype(np.int64)
        done += count
    return splits


def split_arrays(per_trial, splits, trials_per_condition, n_conditions, renames=None):
    """Binned-format arrays from per-trial arrays (trial id first): `{split}_{name}` for every array,
    `{split}_trial_ids` and `{split}_cond_idx` (list over conditions of row indices within the split).
    `renames` maps a split's name in `splits` to its name in the file (default: the same)."""
    arrays = {}
    for split, ids in splits.items():
        name = (renames or {}).get(split, split)
        for key, value in per_trial.items():
            arrays[f"{name}_{key}"] = value[ids]
        conditions = ids // trials_per_condition
        arrays[f"{name}_trial_ids"] = ids.astype(np.int64)
        arrays[f"{name}_cond_idx"] = [np.flatnonzero(conditions == c).astype(np.int64) for c in range(n_conditions)]
    return arrays


def repeat_conditions(per_condition, trials_per_condition):
    """Per-trial copy of a per-condition array (conditions first): trial t gets condition t // repeats."""
    return np.repeat(per_condition, trials_per_condition, axis=0)
