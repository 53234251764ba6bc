"""A little fully observed data: a binned dataset cut down to `n` of its training trials.

SBTT's pretraining experiment (Zhu et al. 2021) learns dynamics on a small fully sampled recording and
then adapts them to a large sparsely sampled one. The small recording is the full-bandwidth dataset
with only `n` training trials kept. The trials are a seeded random draw rather than the first `n`,
because binned files hold their trials ordered by condition and the first `n` would cover only a few
conditions. The draws are nested (the trials kept for n are among those kept for any larger n), so a
curve over n is not blurred by which trials were drawn. The validation and evaluation splits are kept
whole, so every run is scored on the same trials.
"""

import numpy as np

from latentdyn.errors import InputError

TRAIN_PREFIX = "train_"
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
    subset = dict(arrays)
    for key, value in arrays.items():
        if key == CONDITION_INDEX:
            new_position = np.full(n_available, -1)
            new_position[kept] = np.arange(n_trials)
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
