"""Random spike counts in the binned format's keys, for tests that need data of some shape, not of any
structure."""

import numpy as np


def poisson_counts(trials, heldout, heldin=5, bins=8, forward_bins=3, seed=0):
    """Poisson(1) counts: held-in units and their forward bins for every split in `trials` ({split: number
    of trials}), held-out units and their forward bins for the training split only (as NLB files hold)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in trials.items():
        arrays[f"{split}_spikes_heldin"] = rng.poisson(1.0, (n, bins, heldin)).astype(np.float32)
        arrays[f"{split}_spikes_heldin_forward"] = rng.poisson(1.0, (n, forward_bins, heldin)).astype(np.float32)
    arrays["train_spikes_heldout"] = rng.poisson(1.0, (trials["train"], bins, heldout)).astype(np.float32)
    arrays["train_spikes_heldout_forward"] = rng.poisson(1.0, (trials["train"], forward_bins, heldout)).astype(np.float32)
    return arrays
