"""The SBTT demo's latent-Lorenz spiking dataset (Zhu et al., NeurIPS 2021; `snel-repo/sbtt-demo`).

Fixed by the demo: a latent Lorenz system read out to 29 neurons, 50 bins of 20 ms, 65 conditions x 24
trials = 1560 trials, 1248 train / 312 evaluation trials balanced by condition, Poisson spikes, true
rates in spikes per bin. A condition is a shared initial state: its trials share one latent trajectory
and one rate trajectory and differ only by Poisson noise.

Chosen here (the demo's file was made with unreleased LFADS utilities; documented in docs/formats.md):
- Lorenz with the attractor module's parameters (sigma 10, rho 28, beta 8/3) and integrator
  (`attractors.simulate_trajectory`), at `lorenz_speed` = 1.5 Lorenz time units per second, i.e. 0.03
  per 20-ms bin: a 1-s trial covers ~2.4 turns around a wing (the oscillation period near the wings'
  fixed points is 2*pi/10.19 = 0.62 units), ~20 bins a turn.
- Conditions' initial states are points of one long trajectory (after a 10-unit burn-in from the
  system's usual start plus a seeded N(0, 1) perturbation), `condition_gap` = 5 Lorenz time units
  (about 5 Lyapunov times) apart, so conditions are decorrelated but all on the attractor.
- Readout: latents z-scored per dimension, W ~ N(0, 1/3) of shape (3, neurons), activity = z @ W
  z-scored per neuron; rate_i(t) = m_i * exp(g * a_i(t)) / mean_t exp(g * a_i(t)), so neuron i's
  average rate over all trials is exactly m_i. m_i is log-uniform in `mean_rate_hz` = [5, 25] Hz and
  g = `log_rate_gain` = 0.8. At the defaults the true rates have median 9 Hz, 5-95 % range 1.7-45 Hz,
  99th percentile 83 Hz and brief peaks up to ~280 Hz: a cortical range, 0.28 spikes per 20-ms bin
  on average.
- Split: `n_train` trials for training (19 or 20 of each condition at the defaults), optionally
  `n_valid` validation trials carved out of the rest the same way (default 0: the trainer's seeded
  `valid_fraction` validates), the rest evaluation. `psth` is each condition's true rates.
"""

from dataclasses import replace

import numpy as np

from latentdyn.data.attractors import SYSTEMS, simulate_trajectory
from latentdyn.data.conditions import balanced_split, repeat_conditions, split_arrays

BURN_IN_TIME = 10.0  # Lorenz time units integrated before the first condition


def lorenz_condition_latents(n_conditions, n_steps, step, rng, condition_gap=5.0):
    """Latent Lorenz trajectories (conditions x n_steps x 3) sampled every `step` Lorenz time units,
    each starting `condition_gap` time units after the previous one ended on one long trajectory."""
    system = SYSTEMS["lorenz"]
    start = np.asarray(system.initial_state) + rng.normal(size=3)
    system = replace(system, sample_step=step, initial_state=tuple(start))
    gap = int(np.ceil(condition_gap / step))
    burn_in = int(np.ceil(BURN_IN_TIME / step))
    trajectory = simulate_trajectory(system, n_conditions * (n_steps + gap), burn_in_samples=burn_in)
    return trajectory.reshape(n_conditions, n_steps + gap, 3)[:, :n_steps]


def latent_readout_rates(latents, n_neurons, rng, mean_rate_hz, log_rate_gain):
    """Firing rates in Hz (..., n_neurons) of a log-linear readout of `latents` (..., 3), each neuron's
    average over every entry equal to its mean rate (log-uniform in `mean_rate_hz`).
    Returns (rates_hz, readout W (3 x n_neurons), mean rates)."""
    flat = latents.reshape(-1, latents.shape[-1])
    z = (flat - flat.mean(0)) / flat.std(0)
    readout = rng.normal(scale=1 / np.sqrt(latents.shape[-1]), size=(latents.shape[-1], n_neurons))
    activity = z @ readout
    activity = (activity - activity.mean(0)) / activity.std(0)
    low, high = np.log(mean_rate_hz[0]), np.log(mean_rate_hz[1])
    means = np.exp(rng.uniform(low, high, size=n_neurons))
    modulation = np.exp(log_rate_gain * activity)
    rates = means * modulation / modulation.mean(0)
    return rates.reshape(*latents.shape[:-1], n_neurons), readout, means


def make_sbtt_lorenz_dataset(n_conditions=65, trials_per_condition=24, n_neurons=29, n_bins=50, bin_width_s=0.02,
                             n_train=1248, n_valid=0, lorenz_speed=1.5, condition_gap=5.0,
                             mean_rate_hz=(5.0, 25.0), log_rate_gain=0.8, seed=0):
    """Simulate the SBTT demo dataset; returns (arrays, attrs) in the binned-dataset format.

    Splits: `train` (`n_train` trials), `valid` (`n_valid`, only if > 0) and `eval` (the rest), each
    balanced by condition. True rates are spikes per bin; true latents are Lorenz coordinates.
    """
    rng = np.random.default_rng(seed)
    latents = lorenz_condition_latents(n_conditions, n_bins, lorenz_speed * bin_width_s, rng, condition_gap)
    rates_hz, readout, means = latent_readout_rates(latents, n_neurons, rng, mean_rate_hz, log_rate_gain)
    rates = rates_hz * bin_width_s
    trial_rates = repeat_conditions(rates, trials_per_condition)
    spikes = rng.poisson(trial_rates).astype(np.float32)
    sizes = {"train": n_train, **({"valid": n_valid} if n_valid else {}), "eval": None}
    splits = balanced_split(n_conditions, trials_per_condition, sizes, rng)
    per_trial = {
        "spikes_heldin": spikes,
        "true_rates_heldin": trial_rates,
        "true_latents": repeat_conditions(latents, trials_per_condition),
    }
    arrays = split_arrays(per_trial, splits, trials_per_condition, n_conditions)
    arrays["psth"] = rates
    attrs = {
        "dataset": "sbtt_lorenz",
        "bin_width_s": bin_width_s,
        "phase": "synthetic",
        "source": f"latentdyn.data.sbtt_lorenz seed={seed}",
        "seed": seed,
        "system_params": SYSTEMS["lorenz"].params,
        "generator_params": {
            "n_conditions": n_conditions, "trials_per_condition": trials_per_condition, "n_neurons": n_neurons,
            "n_bins": n_bins, "n_train": n_train, "n_valid": n_valid, "lorenz_speed": lorenz_speed,
            "condition_gap": condition_gap, "mean_rate_hz": list(mean_rate_hz), "log_rate_gain": log_rate_gain,
        },
        "neuron_mean_rates_hz": means.tolist(),
        "readout": readout.tolist(),
    }
    return arrays, attrs
