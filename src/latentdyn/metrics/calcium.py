"""Metrics for calcium-imaging datasets (`observation = "calcium"`; latentdyn.data.two_photon).

A model fit to dF/F (LFADS with `reconstruction: gaussian`, the smoothing baseline) writes its predicted
mean dF/F under the output's `{split}_rates_heldin` key: the output format's key, not spikes per bin. So
nothing here treats observations as counts (no Poisson NLL, no comparison of dF/F with spike rates):

- `calcium_r2`: predicted mean dF/F vs the noiseless dF/F (`true_calcium_heldin`) at the file's own
  resolution, every entry (rate-R² definition: per neuron over trials × bins, averaged over neurons).
- Everything else is scored at SUB-FRAME resolution against the sub-frame truth (the sub-frame file's own
  truth; the frame file's `true_*_subframe`), so a model at frame resolution and one at sub-frame
  resolution are compared on the same bins. A frame-resolution prediction is upsampled by REPEATING each
  frame's value over its `subframe_bins` sub-frame bins (a frame's spikes are split evenly over them).
  - `subframe_calcium_r2`: predicted mean dF/F vs the noiseless sub-frame dF/F, every sub-frame bin
    (including those where the neuron was not read).
  - `subframe_rate_r2`: the model's expected spikes per bin, obtained by deconvolving its mean dF/F with
    the simulator's indicator (c_t = d c_(t-1) + A s_t, d = exp(-bin / tau_decay_s), A = spike_amplitude,
    read from `generator_params`): s_t = (mu_(t+1) - d mu_t) / A, the spikes between the reads of bins t
    and t+1, at the model's own resolution; vs the true sub-frame rates. Scored on the sub-frame bins of
    all frames but the last (the last bin has no successor).
  - `subframe_rate_diff_r2`: R² of the first temporal difference of those rates (high-frequency recovery).
  - `subframe_rate_r2_<lo>-<hi>hz`: R² of the rates band-passed (FFT over each trial) to frequency bands
    with edges at 1/4, 1/2 and 1 of the frame rate's Nyquist frequency and the sub-frame Nyquist frequency:
    the last band can only be recovered at sub-frame resolution.
  - `latent_r2`: affine map from the model's inferred dynamical state (`state_latent`) to the true Lorenz
    latents, fit on the training trials and scored on the evaluation trials (in-sample on the evaluation
    trials when the output has no training-trial state), R² averaged over the 3 true dimensions (models
    without latents have none).
"""

import numpy as np

from latentdyn.metrics.ground_truth import r2_per_column, rate_r2


def is_calcium(attrs):
    return attrs.get("observation") == "calcium"


def calcium_metrics(data, attrs, output, state=None, train_state=None, split="eval"):
    """Every calcium metric the dataset's truth supports, as a flat dict (module docstring). `state` and
    `train_state`: the model's inferred dynamical state on the `split` and the training trials."""
    mean = np.asarray(output[f"{split}_rates_heldin"], dtype=np.float64)
    metrics = {}
    if f"{split}_true_calcium_heldin" in data:
        metrics["calcium_r2"] = rate_r2(mean, data[f"{split}_true_calcium_heldin"])
    truth = subframe_truth(data, attrs, split)
    if truth is None:
        return metrics
    repeat, k = truth["repeat"], int(attrs["subframe_bins"])
    if "calcium" in truth:
        metrics["subframe_calcium_r2"] = rate_r2(upsample(mean, repeat), truth["calcium"])
    indicator = attrs.get("generator_params") or {}
    if "rates" in truth and {"tau_decay_s", "spike_amplitude"} <= set(indicator):
        rates = deconvolve(mean, float(attrs["bin_width_s"]), indicator["tau_decay_s"], indicator["spike_amplitude"])
        n_bins = (truth["rates"].shape[1] // k - 1) * k  # sub-frame bins of all frames but the last
        predicted = (upsample(rates, repeat) / repeat)[:, :n_bins]
        true_rates = np.asarray(truth["rates"], dtype=np.float64)[:, :n_bins]
        metrics["subframe_rate_r2"] = rate_r2(predicted, true_rates)
        metrics["subframe_rate_diff_r2"] = rate_r2(np.diff(predicted, axis=1), np.diff(true_rates, axis=1))
        sub_bin_s = float(attrs["bin_width_s"]) / repeat
        for (low, high), (p, t) in zip(*band_pass_pairs(predicted, true_rates, sub_bin_s, attrs["frame_rate_hz"])):
            metrics[f"subframe_rate_r2_{low:g}-{high:g}hz"] = rate_r2(p, t)
    if state is not None and "latents" in truth:
        fit_on = subframe_truth(data, attrs, "train") if train_state is not None else None
        if fit_on is not None and "latents" in fit_on:
            fit_on = (fit_on["latents"], np.asarray(train_state, dtype=np.float64))
        else:
            fit_on = None
        metrics["latent_r2"] = latent_r2(truth["latents"], np.asarray(state, dtype=np.float64), repeat, fit_on)
    return metrics


def subframe_truth(data, attrs, split):
    """The sub-frame ground truth of either file, and by how much the file's bins are upsampled to it."""
    if "subframe_bins" not in attrs:
        return None
    if attrs.get("resolution") == "frame":
        keys, repeat = {"rates": "true_rates_subframe", "calcium": "true_calcium_subframe",
                        "latents": "true_latents_subframe"}, int(attrs["subframe_bins"])
    else:
        keys, repeat = {"rates": "true_rates_heldin", "calcium": "true_calcium_heldin", "latents": "true_latents"}, 1
    truth = {name: np.asarray(data[f"{split}_{key}"]) for name, key in keys.items() if f"{split}_{key}" in data}
    return {**truth, "repeat": repeat} if truth else None


def upsample(array, repeat):
    """Each bin repeated `repeat` times along axis 1 (frame -> sub-frame bins)."""
    return array if repeat == 1 else np.repeat(array, repeat, axis=1)


def deconvolve(mean_calcium, bin_s, tau_decay_s, amplitude):
    """Expected spikes between consecutive reads of a first-order indicator: (mu_(t+1) - d mu_t) / A,
    d = exp(-bin_s / tau); one bin fewer than the input."""
    decay = np.exp(-bin_s / tau_decay_s)
    return (mean_calcium[:, 1:] - decay * mean_calcium[:, :-1]) / amplitude


def band_edges(bin_s, frame_rate_hz):
    """Band edges (Hz): 0, 1/4, 1/2 and 1 of the frame Nyquist frequency, and the bins' Nyquist frequency."""
    nyquist = 0.5 / bin_s
    frame_nyquist = 0.5 * frame_rate_hz
    edges = [0.0, frame_nyquist / 4, frame_nyquist / 2, frame_nyquist]
    return [e for e in edges if e < nyquist] + [nyquist]


def band_pass_pairs(predicted, truth, bin_s, frame_rate_hz):
    """([(low, high) per band], [(predicted, truth) band-passed over time to that band])."""
    frequencies = np.fft.rfftfreq(truth.shape[1], d=bin_s)
    spectra = np.fft.rfft(predicted, axis=1), np.fft.rfft(truth, axis=1)
    edges = band_edges(bin_s, frame_rate_hz)
    bands, pairs = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (frequencies >= low) & ((frequencies < high) | (high == edges[-1]))
        keep = inside[None, :, None]
        pairs.append(tuple(np.fft.irfft(np.where(keep, s, 0), n=truth.shape[1], axis=1) for s in spectra))
        bands.append((round(low, 2), round(high, 2)))
    return bands, pairs


def latent_r2(true_latents, inferred, repeat=1, fit_on=None):
    """R² of an affine map from the inferred state (upsampled by `repeat`) to the true latents, averaged
    over true dimensions; the map is fit on `fit_on` = (true latents, inferred state) of other trials
    when given, else on the scored trials themselves."""

    def paired(truth, state):
        """(truth, state) on their common bins, flattened to samples × dimensions."""
        state = upsample(state, repeat)
        n_bins = min(state.shape[1], np.shape(truth)[1])
        return tuple(np.asarray(a, dtype=np.float64)[:, :n_bins].reshape(-1, np.shape(a)[-1]) for a in (truth, state))

    true_flat, inferred_flat = paired(true_latents, inferred)
    fit_true, fit_inferred = paired(*fit_on) if fit_on is not None else (true_flat, inferred_flat)
    design = np.hstack([fit_inferred, np.ones((len(fit_inferred), 1))])
    weights, *_ = np.linalg.lstsq(design, fit_true, rcond=None)
    predicted = np.hstack([inferred_flat, np.ones((len(inferred_flat), 1))]) @ weights
    return float(np.mean(r2_per_column(predicted, true_flat)))
