"""The chaotic-RNN spiking dataset of LFADS and NDT (Sussillo et al. 2016; Ye & Pandarinath 2021).

A random rate network of N = 50 units, W ~ N(0, 1/N), gain g = 1.5, time constant tau = 25 ms, Euler
steps of dt = 10 ms: x <- (1 - dt/tau) x + (dt/tau) g W tanh(x). A condition is an initial state
x0 ~ N(0, 1) (`x0_std` = 1); its 100-bin (1-s) trajectory is shared by its trials, which differ only by
Poisson noise. Rates: tanh(x) min-max scaled to [0, 1] per trial and neuron, times `max_rate_hz` = 30
Hz, so true rates are in [0, 30 Hz * dt] = [0, 0.3] spikes per bin; spikes ~ Poisson(rate). Every
unit is observed (held in). `train_fraction` (80 %) of each condition's trials train, the rest evaluate.

Bin 0 holds x0 and bin t the state after t steps. True latents are x (trials x bins x N), the network's
weights are kept as `rnn_weights` (W, without g) and the per-condition true rates as `psth`.
"""

import numpy as np

from latentdyn.data.conditions import balanced_split, repeat_conditions, split_arrays


def rnn_step(x, weights, g, dt, tau):
    """One Euler step of the rate network: x (..., N) -> (1 - dt/tau) x + (dt/tau) g W tanh(x)."""
    alpha = dt / tau
    return (1 - alpha) * x + alpha * g * np.tanh(x) @ weights.T


def minmax_rates(states, max_rate_hz, dt):
    """tanh(states) scaled to [0, 1] over bins per trial and neuron, as spikes per bin at `max_rate_hz`."""
    activity = np.tanh(states)
    low, high = activity.min(axis=-2, keepdims=True), activity.max(axis=-2, keepdims=True)
    return (activity - low) / np.maximum(high - low, 1e-12) * max_rate_hz * dt


def make_chaotic_rnn_dataset(n_neurons=50, g=1.5, tau=0.025, dt=0.01, n_bins=100, n_conditions=130,
                             trials_per_condition=10, max_rate_hz=30.0, train_fraction=0.8, x0_std=1.0, seed=0):
    """Simulate the chaotic-RNN dataset; returns (arrays, attrs) in the binned-dataset format."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=1 / np.sqrt(n_neurons), size=(n_neurons, n_neurons))
    states = np.empty((n_conditions, n_bins, n_neurons))
    states[:, 0] = rng.normal(scale=x0_std, size=(n_conditions, n_neurons))
    for t in range(1, n_bins):
        states[:, t] = rnn_step(states[:, t - 1], weights, g, dt, tau)
    rates = minmax_rates(states, max_rate_hz, dt)  # same trajectory for every trial of a condition
    trial_rates = repeat_conditions(rates, trials_per_condition)
    spikes = rng.poisson(trial_rates).astype(np.float32)
    n_trials = n_conditions * trials_per_condition
    splits = balanced_split(n_conditions, trials_per_condition,
                            {"train": int(round(train_fraction * n_trials)), "eval": None}, rng)
    per_trial = {
        "spikes_heldin": spikes,
        "true_rates_heldin": trial_rates,
        "true_latents": repeat_conditions(states, trials_per_condition),
    }
    arrays = split_arrays(per_trial, splits, trials_per_condition, n_conditions)
    arrays["psth"] = rates
    arrays["rnn_weights"] = weights
    attrs = {
        "dataset": "chaotic_rnn",
        "bin_width_s": dt,
        "phase": "synthetic",
        "source": f"latentdyn.data.chaotic_rnn seed={seed}",
        "seed": seed,
        "generator_params": {
            "n_neurons": n_neurons, "g": g, "tau": tau, "dt": dt, "n_bins": n_bins, "n_conditions": n_conditions,
            "trials_per_condition": trials_per_condition, "max_rate_hz": max_rate_hz,
            "train_fraction": train_fraction, "x0_std": x0_std,
        },
    }
    return arrays, attrs
