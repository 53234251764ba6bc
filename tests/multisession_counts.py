"""Tiny binned sessions that share low-dimensional latent trajectories but not neurons: what the stitching
tests need, made in memory in milliseconds (the NWB generator is data/multisession.py)."""

import numpy as np

N_CONDITIONS = 4


def latent_trajectories(bins, n_conditions=N_CONDITIONS):
    """Conditions × bins × 3: a rotation whose phase depends on the condition, and a ramp."""
    t = np.linspace(0, 1, bins)
    phase = 2 * np.pi * np.arange(n_conditions)[:, None] / n_conditions
    return np.stack([np.cos(2 * np.pi * t + phase), np.sin(2 * np.pi * t + phase), np.broadcast_to(t, phase.shape[:1] + t.shape)], -1)


def binned_session(seed, n_train, n_eval=12, bins=20, n_heldin=14, n_heldout=3, conditions=range(N_CONDITIONS)):
    """(arrays, attrs) of one session in the binned format, with true rates (counts per bin), condition
    indices and condition names shared with every other session of this module."""
    rng = np.random.default_rng(seed)
    latents = latent_trajectories(bins)
    n_units = n_heldin + n_heldout
    weights = rng.normal(0.0, 0.8, (3, n_units))
    baseline = np.log(rng.uniform(0.3, 1.5, n_units))
    conditions = np.asarray(list(conditions))
    arrays = {}
    for split, n in (("train", n_train), ("eval", n_eval)):
        labels = conditions[np.arange(n) % len(conditions)]
        rates = np.exp(baseline + latents[labels] @ weights).astype(np.float32)
        counts = rng.poisson(rates).astype(np.float32)
        arrays[f"{split}_spikes_heldin"], arrays[f"{split}_spikes_heldout"] = counts[..., :n_heldin], counts[..., n_heldin:]
        arrays[f"{split}_true_rates_heldin"], arrays[f"{split}_true_rates_heldout"] = rates[..., :n_heldin], rates[..., n_heldin:]
        arrays[f"{split}_cond_idx"] = [np.flatnonzero(labels == c) for c in conditions]
        arrays[f"{split}_trial_ids"] = np.arange(n)
    attrs = {"dataset": f"session{seed}", "bin_width_s": 0.02, "phase": "val", "conditions": [f"c={c}" for c in conditions]}
    return arrays, attrs
