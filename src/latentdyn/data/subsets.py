"""Binned datasets derived by choosing training trials: a little fully observed data (`n` of the training
trials), and whole conditions withheld from training (their trials moved to the evaluation split).

SBTT's pretraining experiment (Zhu et al. 2021) learns dynamics on a small fully sampled recording and
then adapts them to a large sparsely sampled one. The small recording is the full-bandwidth dataset
with only `n` training trials kept. The trials are a seeded random draw rather than the first `n`,
because binned files hold their trials ordered by condition and the first `n` would cover only a few
conditions. The draws are nested (the trials kept for n are among those kept for any larger n), so a
curve over n is not blurred by which trials were drawn. The validation and evaluation splits are kept
whole, so every run is scored on the same trials.

Withheld conditions (issue 19, generating trials of conditions never seen): every training trial of the
chosen conditions moves to the evaluation split, so a model never sees them and they are scored beside
the evaluation trials they already had. It works on any binned dataset with conditions and hand velocity
(the simulated reaching task, MC_Maze, a user's recording), so one mechanism serves simulated and
recorded data. A condition's reach angle is the direction of its trials' mean hand displacement over the
window (the summed mean velocity): for the simulated task that is its true direction, for a maze the
place the reach went, whatever path the barriers forced.
"""

import numpy as np

from latentdyn.errors import InputError

TRAIN_PREFIX = "train_"
EVAL_PREFIX = "eval_"
CONDITION_INDEX = "train_cond_idx"


def keep_train_trials(arrays, n_trials, seed, path="<data>"):
    """A copy of `arrays` whose `train_*` arrays keep the first `n_trials` of a seeded random order of
    the training trials (in their original order); `train_cond_idx` is re-indexed to the kept trials.

    Raises InputError naming `path` if `n_trials` is not in 1..(training trials).
    """
    n_available = len(arrays["train_spikes_heldin"])
    if not 1 <= n_trials <= n_available:
        raise InputError(path, "train_spikes_heldin", f"cannot keep {n_trials} of its {n_available} training trials")
    kept = np.sort(np.random.default_rng(seed).permutation(n_available)[:n_trials])
    return _keep_train_rows(arrays, kept)


def _keep_train_rows(arrays, kept):
    """A copy of `arrays` whose `train_*` arrays keep rows `kept` (sorted), `train_cond_idx` re-indexed."""
    n_available = len(arrays["train_spikes_heldin"])
    subset = dict(arrays)
    for key, value in arrays.items():
        if key == CONDITION_INDEX:
            new_position = np.full(n_available, -1)
            new_position[kept] = np.arange(len(kept))
            subset[key] = [new_position[idx][new_position[idx] >= 0].astype(np.int64) for idx in value]
        elif key.startswith(TRAIN_PREFIX):
            subset[key] = np.asarray(value)[kept]
    return subset


def subset_attrs(attrs, n_trials, seed, source=None):
    """Attributes of the cut-down dataset: its name `<dataset>_full<n>` and how it was drawn."""
    return {
        **attrs,
        "dataset": f"{attrs['dataset']}_full{n_trials}",
        "source": f"latentdyn.data.subsets n_train={n_trials} seed={seed} of {source or attrs['dataset']}",
        "n_train_kept": n_trials,
        "subset_seed": seed,
    }


def trial_conditions(arrays, split):
    """Each trial's condition (index into the `conditions` attribute) in `split`; −1 where it has none
    (nlb_tools leaves short trials out of every condition)."""
    conditions = np.full(len(arrays[f"{split}_spikes_heldin"]), -1)
    for index, rows in enumerate(arrays[f"{split}_cond_idx"]):
        conditions[rows] = index
    return conditions


def condition_angles(arrays, path="<data>"):
    """Each condition's reach angle (radians in [0, 2π)): the direction of its trials' mean hand
    displacement over the window, from the hand velocity of both splits (module docstring). NaN for a
    condition with no reach to point it (no trials, or a mean displacement of zero or of NaN only):
    atan2(0, 0) would call it a reach at 0°."""
    for key in ("train_cond_idx", "eval_cond_idx", "train_behavior", "eval_behavior"):
        if key not in arrays:
            raise InputError(path, key, "missing: reach angles need conditions and hand velocity (val phase)")
    if arrays["train_behavior"].ndim != 3 or arrays["train_behavior"].shape[-1] != 2:
        raise InputError(path, "train_behavior", f"shape {arrays['train_behavior'].shape}: reach angles need "
                         "trials × bins × 2 hand velocity")
    angles = []
    for train_rows, eval_rows in zip(arrays["train_cond_idx"], arrays["eval_cond_idx"]):
        velocity = np.concatenate([arrays["train_behavior"][train_rows], arrays["eval_behavior"][eval_rows]])
        finite = np.isfinite(velocity)
        mean = np.where(finite, velocity, 0.0).sum(0) / np.maximum(finite.sum(0), 1)  # NaN-free nanmean
        x, y = mean.sum(0)
        angles.append(np.arctan2(y, x) % (2 * np.pi) if x or y else np.nan)
    return np.array(angles)


def require_finite_velocity(arrays, path="<data>"):
    """The generative study scores hand velocity in every bin of every trial with a condition (its ridge
    fits and R² take no NaN): refuse NaN or inf there in one line, before any model is trained on the
    dataset. Trials of no condition (outliers, which may lack velocity) are not scored."""
    for split in ("train", "eval"):
        key = f"{split}_behavior"
        bad = ~np.isfinite(arrays[key][trial_conditions(arrays, split) >= 0])
        if bad.any():
            raise InputError(path, key, f"{bad.any(-1).sum()} bins of hand velocity of trials with a condition are "
                             "NaN or inf; the generative study scores velocity in every bin (drop or fill them)")


def choose_withheld(withheld, condition_names, angles, path="<data>"):
    """Indices of the conditions to withhold: `withheld` names them (the `conditions` attribute's names) or,
    as a count n, takes the condition nearest in reach angle to each of n angles spread evenly around the
    circle (2π(i + ½)/n), each condition once. Only conditions with a reach angle can be withheld: the
    study generates a withheld condition from its angle."""
    if isinstance(withheld, float) and withheld.is_integer():
        withheld = int(withheld)  # JSON's 2.0 (the config schema takes it as an integer)
    if isinstance(withheld, bool) or not isinstance(withheld, (int, list)) or withheld == []:
        raise InputError(path, "conditions", f"cannot withhold {withheld!r}: give a count or a list of names")
    if isinstance(withheld, int):
        if not 1 <= withheld < len(condition_names):
            raise InputError(path, "conditions", f"cannot withhold {withheld} of its {len(condition_names)} "
                             "conditions (at least one, and one must stay seen)")
        if withheld > np.isfinite(angles).sum():
            raise InputError(path, "conditions", f"cannot withhold {withheld}: only {np.isfinite(angles).sum()} "
                             "conditions have a reach (trials with hand velocity neither only zero nor only NaN)")
        chosen = []
        for target in 2 * np.pi * (np.arange(withheld) + 0.5) / withheld:
            gaps = np.abs((angles - target + np.pi) % (2 * np.pi) - np.pi)
            gaps[np.isnan(gaps)] = np.inf  # a condition without trials has no angle
            gaps[chosen] = np.inf
            chosen.append(int(np.argmin(gaps)))
        return np.sort(chosen)
    unknown = [name for name in withheld if name not in condition_names]
    if unknown:
        raise InputError(path, "conditions", f"no condition named {unknown[0]!r} (names look like "
                         f"{condition_names[0]!r})")
    chosen = np.unique([list(condition_names).index(name) for name in withheld])  # a name given twice counts once
    if len(chosen) >= len(condition_names):
        raise InputError(path, "conditions", "cannot withhold every condition")
    without_reach = [condition_names[i] for i in chosen if np.isnan(angles[i])]
    if without_reach:
        raise InputError(path, "conditions", f"condition {without_reach[0]!r} has no reach to generate it from "
                         "(no trials, or hand velocity only zero or NaN)")
    return chosen


def withhold_conditions(arrays, attrs, withheld, path="<data>"):
    """(arrays, attrs) of the dataset with every training trial of the `withheld` conditions (names, or a
    count: `choose_withheld`) moved to the end of the evaluation split; `*_cond_idx` follow them. Needs
    the val phase: the moved trials bring their held-out spikes, behaviour and truth to the evaluation
    arrays of the same names, so each per-trial evaluation array must have a training counterpart."""
    names = list(attrs.get("conditions", []))
    if not names or "eval_cond_idx" not in arrays:
        raise InputError(path, "eval_cond_idx", "missing: withholding conditions needs them (val phase)")
    chosen = choose_withheld(withheld, names, condition_angles(arrays, path), path)
    require_finite_velocity(arrays, path)
    moved = np.isin(trial_conditions(arrays, "train"), chosen)
    n_eval = len(arrays["eval_spikes_heldin"])
    out = _keep_train_rows(arrays, np.flatnonzero(~moved))
    for key in arrays:
        if key.startswith(EVAL_PREFIX) and key != "eval_cond_idx":
            source = TRAIN_PREFIX + key.removeprefix(EVAL_PREFIX)
            if source not in arrays:
                raise InputError(path, key, f"has no training counterpart {source} to move withheld trials from")
            out[key] = np.concatenate([arrays[key], np.asarray(arrays[source])[moved]])
    positions = np.cumsum(moved) - 1 + n_eval  # each moved trial's row in the new evaluation split
    out["eval_cond_idx"] = [np.concatenate([rows, positions[train_rows[moved[train_rows]]]]).astype(np.int64)
                            for rows, train_rows in zip(arrays["eval_cond_idx"], arrays["train_cond_idx"])]
    withheld_names = [names[i] for i in chosen]
    return out, {
        **attrs,
        "dataset": f"{attrs['dataset']}_unseen",
        "source": f"latentdyn.data.subsets withheld {withheld_names} of {path}",
        "withheld_conditions": withheld_names,
        "n_train_moved": int(moved.sum()),
    }
