"""Simulated two-photon calcium imaging with staggered (serial) scanning, for SBTT at sub-frame resolution.

A laser scan reads each neuron once per frame, at its own time within the frame (its scan position).
Binned at the frame rate every neuron has one sample per bin but samples are misaligned by up to a
frame; binned finer (k bins per frame) each neuron is observed in exactly one bin of every k and is NaN
in the others, which SBTT fills (Zhu et al., NeurIPS 2021; RADICaL, Zhu et al., Nat. Neurosci. 2022).
No public generator of the papers' exact simulation was found, so every parameter below is this
module's design choice (defaults in parentheses; config section `two_photon`):

1. Latent dynamics: the SBTT Lorenz latent (`sbtt_lorenz.lorenz_condition_latents`, the attractor
   module's Lorenz system and integrator) at `lorenz_speed` (1.0) Lorenz time units per second: one turn
   around a wing takes ~0.62 s, ~19 frames, slow enough to show through a calcium indicator, fast enough
   that sub-frame timing matters. Conditions (`n_conditions` 40) are initial states on one long trajectory
   `condition_gap` (5) time units apart; each has `trials_per_condition` (20) trials differing only by
   spiking and imaging noise; `train_fraction` (0.8) of each condition's trials train, the rest evaluate.
2. Firing: `n_neurons` (50) neurons, log-linear readout of the z-scored latents (as in sbtt_lorenz:
   W ~ N(0, 1/3), activity z-scored per neuron, gain `log_rate_gain` 0.8), each neuron's average rate
   log-uniform in `mean_rate_hz` ([2, 10] Hz: typical of cortical neurons imaged with GCaMP). Spikes are
   Poisson on a fine grid of `fine_steps_per_bin` (10) steps per sub-frame bin (1.1 ms at the defaults).
3. Calcium (GCaMP-like, first-order): each spike adds `spike_amplitude` (0.2 dF/F, about one action
   potential of GCaMP6f/6s) and the fluorescence decays exponentially with `tau_decay_s` (0.5 s, between
   GCaMP6f and GCaMP6s); c_j = exp(-dt/tau) c_{j-1} + A s_j on the fine grid (an AR(1) model; rise time,
   saturation, neuropil and bleaching are not modelled). `calcium_burn_in_s` (3 s, six decay times) of
   the same dynamics run before each trial, so fluorescence starts in its steady state.
4. Imaging: frames at `frame_rate_hz` (30 Hz, a resonant scanner). Neuron i (scan order = index order)
   is read at offset_i = (i / n_neurons) * frame period into every frame, on the fine grid (calcium
   including the spikes of fine step floor(offset_i / dt)); additive Gaussian noise of `noise_std`
   (0.1 dF/F; single-spike SNR 2) is added to every read. The sample's value is dF/F, not a count.
5. Binning: `n_frames` (45, 1.5 s) frames a trial. Sub-frame resolution: `subframe_bins` (k = 3) bins a
   frame (11.1 ms at the defaults); neuron i's read falls in bin f*k + floor(i*k/n_neurons) of frame f and
   the other k-1 bins of the frame are NaN. Frame resolution: one bin a frame, every neuron's read in its
   frame's bin (no NaN; reads are up to one frame apart across neurons).

Ground truth at each file's resolution: `{split}_true_rates_heldin` (expected spikes per bin),
`{split}_true_counts_heldin` (the spikes drawn), `{split}_true_calcium_heldin` (noiseless dF/F at each
bin, read at the neuron's scan phase within the bin), `{split}_true_latents` (Lorenz state averaged over
the bin). The frame file also keeps the sub-frame truth (`{split}_true_rates_subframe`,
`{split}_true_latents_subframe`, `{split}_true_calcium_subframe`). `scan_offset_s` and `scan_subframe_bin` give each neuron's read time.

Likelihood: the observations are continuous dF/F with additive Gaussian noise and can be negative, so
a Poisson model is wrong for them; use a Gaussian reconstruction (LFADS `reconstruction: gaussian`),
which matches this generator's noise, as the first choice. Gamma needs positive data and the
zero-inflated gamma (`zig`) is RADICaL's model for deconvolved events (run a deconvolution such as OASIS
first, then `zig`). A model's output is then in the units of its observations (dF/F for Gaussian), so
compare it with `true_calcium`, or map it to spikes before comparing with `true_rates`.
"""

import numpy as np

from latentdyn.data.conditions import balanced_split, split_arrays
from latentdyn.data.sbtt_lorenz import latent_readout_rates, lorenz_condition_latents

RECOMMENDED_RECONSTRUCTION = "gaussian"


def scan_schedule(n_neurons, subframe_bins, fine_steps_per_bin):
    """Each neuron's read within a frame: (fine step within the frame, sub-frame bin, offset as a
    fraction of the frame period)."""
    fraction = np.arange(n_neurons) / n_neurons
    fine_step = np.floor(fraction * subframe_bins * fine_steps_per_bin + 1e-9).astype(np.int64)
    return fine_step, fine_step // fine_steps_per_bin, fraction


def simulate_imaging(rates, conditions, n_window, n_burn_in, decay, amplitude, fine_steps_per_bin, fine_phase, rng):
    """Spikes and calcium on the fine grid for every trial.

    rates: conditions x (burn-in + window) fine steps x neurons, expected spikes per fine step;
    conditions: each trial's condition. Returns per trial (trials x sub-frame bins x neurons) the spike
    counts of each sub-frame bin and the noiseless calcium read at each neuron's phase `fine_phase`
    (fine step within a sub-frame bin) of every sub-frame bin.
    """
    n_trials, n_neurons = len(conditions), rates.shape[-1]
    n_bins = n_window // fine_steps_per_bin
    counts = np.zeros((n_trials, n_bins, n_neurons), dtype=np.int32)
    calcium_read = np.zeros((n_trials, n_bins, n_neurons))
    calcium = np.zeros((n_trials, n_neurons))
    neurons_at_phase = [np.flatnonzero(fine_phase == p) for p in range(fine_steps_per_bin)]
    for step in range(n_burn_in + n_window):
        spikes = rng.poisson(rates[conditions, step])
        calcium = decay * calcium + amplitude * spikes
        j = step - n_burn_in
        if j < 0:
            continue
        b, phase = divmod(j, fine_steps_per_bin)
        counts[:, b] += spikes
        read = neurons_at_phase[phase]
        calcium_read[:, b, read] = calcium[:, read]
    return counts, calcium_read


def make_two_photon_datasets(n_conditions=40, trials_per_condition=20, train_fraction=0.8, n_neurons=50,
                             frame_rate_hz=30.0, subframe_bins=3, n_frames=45, fine_steps_per_bin=10,
                             lorenz_speed=1.0, condition_gap=5.0, mean_rate_hz=(2.0, 10.0), log_rate_gain=0.8,
                             tau_decay_s=0.5, spike_amplitude=0.2, noise_std=0.1, calcium_burn_in_s=3.0, seed=0):
    """Simulate one staggered-scan two-photon experiment; returns {"subframe": (arrays, attrs),
    "frame": (arrays, attrs)}: the same reads binned at sub-frame and at frame resolution."""
    rng = np.random.default_rng(seed)
    k, m = subframe_bins, fine_steps_per_bin
    frame_s = 1.0 / frame_rate_hz
    fine_s = frame_s / (k * m)
    n_window = n_frames * k * m
    n_burn_in = int(np.ceil(calcium_burn_in_s / fine_s))
    latents = lorenz_condition_latents(n_conditions, n_burn_in + n_window, lorenz_speed * fine_s, rng, condition_gap)
    rates_hz, readout, means = latent_readout_rates(latents, n_neurons, rng, mean_rate_hz, log_rate_gain)
    rates = rates_hz * fine_s  # expected spikes per fine step
    fine_step, scan_bin, fraction = scan_schedule(n_neurons, k, m)
    conditions = np.repeat(np.arange(n_conditions), trials_per_condition)
    counts, calcium = simulate_imaging(rates, conditions, n_window, n_burn_in, np.exp(-fine_s / tau_decay_s),
                                       spike_amplitude, m, fine_step % m, rng)
    n_bins = n_frames * k

    def per_bin(x, size):  # fine steps of the window -> sum over bins of `size` fine steps
        x = x[:, n_burn_in:]
        return x.reshape(x.shape[0], -1, size, x.shape[-1])

    sub_rates = per_bin(rates, m).sum(axis=2)[conditions]
    sub_latents = per_bin(latents, m).mean(axis=2)[conditions]
    frame_rates = per_bin(rates, k * m).sum(axis=2)[conditions]
    frame_latents = per_bin(latents, k * m).mean(axis=2)[conditions]
    frame_counts = counts.reshape(len(conditions), n_frames, k, n_neurons).sum(axis=2).astype(np.float32)
    counts = counts.astype(np.float32)

    read_bins = np.arange(n_frames)[:, None] * k + scan_bin[None, :]  # frames x neurons
    true_read = np.take_along_axis(calcium, read_bins[None], axis=1)  # trials x frames x neurons
    observed = true_read + rng.normal(scale=noise_std, size=true_read.shape)
    sub_observed = np.full((len(conditions), n_bins, n_neurons), np.nan, dtype=np.float32)
    read_index = np.broadcast_to(read_bins[None], observed.shape)
    np.put_along_axis(sub_observed, read_index, observed.astype(np.float32), axis=1)

    splits = balanced_split(n_conditions, trials_per_condition,
                            {"train": int(round(train_fraction * len(conditions))), "eval": None}, rng)
    params = {
        "n_conditions": n_conditions, "trials_per_condition": trials_per_condition, "train_fraction": train_fraction,
        "n_neurons": n_neurons, "frame_rate_hz": frame_rate_hz, "subframe_bins": k, "n_frames": n_frames,
        "fine_steps_per_bin": m, "lorenz_speed": lorenz_speed, "condition_gap": condition_gap,
        "mean_rate_hz": list(mean_rate_hz), "log_rate_gain": log_rate_gain, "tau_decay_s": tau_decay_s,
        "spike_amplitude": spike_amplitude, "noise_std": noise_std, "calcium_burn_in_s": calcium_burn_in_s,
    }
    common = {
        "phase": "synthetic",
        "seed": seed,
        "observation": "calcium",
        "observation_units": "dF/F",
        "recommended_reconstruction": RECOMMENDED_RECONSTRUCTION,
        "frame_rate_hz": frame_rate_hz,
        "subframe_bins": k,
        "generator_params": params,
        "neuron_mean_rates_hz": means.tolist(),
        "readout": readout.tolist(),
    }
    scan = {"scan_offset_s": fraction * frame_s, "scan_subframe_bin": scan_bin}
    subframe = split_arrays({
        "spikes_heldin": sub_observed,
        "true_rates_heldin": sub_rates,
        "true_counts_heldin": counts,
        "true_calcium_heldin": calcium,
        "true_latents": sub_latents,
    }, splits, trials_per_condition, n_conditions)
    frame = split_arrays({
        "spikes_heldin": observed.astype(np.float32),
        "true_rates_heldin": frame_rates,
        "true_counts_heldin": frame_counts,
        "true_calcium_heldin": true_read,
        "true_latents": frame_latents,
        "true_rates_subframe": sub_rates,
        "true_latents_subframe": sub_latents,
        "true_calcium_subframe": calcium,
    }, splits, trials_per_condition, n_conditions)
    return {
        "subframe": ({**subframe, **scan}, {
            **common, "dataset": "two_photon_subframe", "bin_width_s": frame_s / k, "resolution": "subframe",
            "source": f"latentdyn.data.two_photon seed={seed}, sub-frame bins ({k} a frame)",
        }),
        "frame": ({**frame, **scan}, {
            **common, "dataset": "two_photon_frame", "bin_width_s": frame_s, "resolution": "frame",
            "source": f"latentdyn.data.two_photon seed={seed}, frame bins",
        }),
    }
