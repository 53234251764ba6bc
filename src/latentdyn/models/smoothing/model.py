"""The Neural Latents Benchmark's spike-smoothing baseline, as a model kind (models/kinds.py).

Recipe from nlb_tools examples/baselines/smoothing/run_smoothing.py (github.com/neurallatents/nlb_tools):
held-in rates are the Gaussian-smoothed held-in spikes; held-out rates come from one Poisson GLM per
held-out unit, fit on the training trials, from log(smoothed held-in + 1e-4) to the unit's spikes;
predictions are clipped to [1e-9, 1e20]. nlb_tools' baseline makes no forward predictions; here one
Poisson GLM per unit maps the log-smoothed held-in activity of the window's last bin (the state just
before the forward window) plus a one-hot forward-bin index to the unit's forward spikes. Sharing the
state weights across forward bins pools every bin's spikes into one fit: separate per-bin GLMs overfit
sparse 5 ms bins and predict near-zero rates where a few training trials happened to be silent.
Deterministic: no seed, no device.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal.windows import gaussian

from latentdyn.errors import InputError
from latentdyn.models.poisson_glm import fit_poisson_glms, predict_poisson_glms, with_bin_index

# (kernel sd in ms, GLM alpha) per NLB dataset: nlb_tools' `default_dict`, chosen by its 5 ms CV sweep.
NLB_SETTINGS = {
    "mc_maze": (50, 0.01),
    "mc_rtt": (30, 0.1),
    "area2_bump": (30, 0.01),
    "dmfc_rsg": (60, 0.001),
    "mc_maze_large": (40, 0.1),
    "mc_maze_medium": (60, 0.1),
    "mc_maze_small": (60, 0.1),
}
DEFAULT_SETTINGS = NLB_SETTINGS["mc_maze"]
LOG_OFFSET = 1e-4  # added before the log so silent bins do not give log(0)


@dataclass
class SmoothingModel:
    """The kernel and, once fitted, one Poisson GLM per held-out unit and per forward unit."""

    params: dict
    window: np.ndarray | None = None
    alpha: float | None = None
    heldout_glms: list | None = None
    forward_glms: dict = field(default_factory=dict)  # "heldin"/"heldout" -> GLMs


def build(params, shapes):
    return SmoothingModel(params)


def fit(model, prepared, params):
    """Choose the kernel for the dataset's bin width; fit the held-out and forward GLMs on the training trials."""
    kernel_sd_ms, model.alpha = _settings(prepared.attrs, params)
    model.window = gaussian_window(kernel_sd_ms, round(prepared.attrs["bin_width_s"] * 1000, 6))
    data = prepared.arrays
    features = _log_features(data["train_spikes_heldin"], model.window)
    if "train_spikes_heldout" in data:
        model.heldout_glms = fit_poisson_glms(_flatten_time(features), _flatten_time(data["train_spikes_heldout"]), model.alpha)
    for units in ("heldin", "heldout"):
        key = f"train_spikes_{units}_forward"
        if key in data:
            n_forward_bins = data[key].shape[1]
            model.forward_glms[units] = fit_poisson_glms(
                with_bin_index(features[:, -1], n_forward_bins), _flatten_time(data[key]), model.alpha
            )
    return model


def predict(model, prepared, params, device=None):
    """Smoothed held-in spikes as rates; held-out rates for train/eval, forward rates for eval."""
    data = prepared.arrays
    output = {}
    for split in (s for s in ("train", "eval", "test") if f"{s}_spikes_heldin" in data):
        smoothed = smooth_spikes(data[f"{split}_spikes_heldin"], model.window)
        features = np.log(smoothed + LOG_OFFSET)
        output[f"{split}_rates_heldin"] = smoothed
        if model.heldout_glms is not None and split in ("train", "eval"):
            rates = predict_poisson_glms(model.heldout_glms, _flatten_time(features))
            output[f"{split}_rates_heldout"] = rates.reshape(*features.shape[:2], -1)
        if split == "eval":
            for units, glms in model.forward_glms.items():
                n_forward_bins = data[f"train_spikes_{units}_forward"].shape[1]
                rates = predict_poisson_glms(glms, with_bin_index(features[:, -1], n_forward_bins))
                output[f"eval_rates_{units}_forward"] = rates.reshape(len(features), n_forward_bins, -1)
    return {key: value.astype(np.float32) for key, value in output.items()}


def _log_features(spikes, window):
    return np.log(smooth_spikes(spikes, window) + LOG_OFFSET)


def gaussian_window(kernel_sd_ms, bin_ms):
    """nlb_tools' smoothing kernel: gaussian(int(6·sd), int(sd)) in bins, normalised to sum 1.

    The int() truncation is nlb_tools' (50 ms at 20 ms bins becomes 2 bins); kept so results match.
    """
    sd_bins = int(kernel_sd_ms / bin_ms)
    if sd_bins < 1:
        raise InputError("params", "kernel_sd_ms", f"{kernel_sd_ms} ms is shorter than one {bin_ms} ms bin")
    window = gaussian(int(6 * kernel_sd_ms / bin_ms), sd_bins, sym=True)
    return window / window.sum()


def smooth_spikes(spikes, window):
    """Convolve each trial and unit over time with `window`, zero-padded at the edges like nlb_tools.

    Unobserved (NaN) bins are left out and each output bin is rescaled by (kernel weight inside the trial)
    / (kernel weight on observed bins), so NaN-free spikes give nlb_tools' numbers (to rounding) and gaps are
    filled from observed neighbours. Bins with no observed bin within reach get the unit's mean count.
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    observed = ~np.isnan(spikes)
    # np.convolve(..., "same") centres an even-length window half a bin later than convolve1d's default.
    origin = -1 if len(window) % 2 == 0 else 0

    def convolve(array):
        return convolve1d(array, window, axis=1, mode="constant", cval=0.0, origin=origin)

    in_trial_weight = convolve(np.ones_like(spikes))
    observed_weight = convolve(observed.astype(np.float64))
    summed = convolve(np.where(observed, spikes, 0.0))
    reachable = observed_weight > 0
    smoothed = np.empty_like(spikes)
    smoothed[reachable] = summed[reachable] * (in_trial_weight[reachable] / observed_weight[reachable])
    unit_means = np.broadcast_to(_unit_means(spikes), spikes.shape)
    smoothed[~reachable] = unit_means[~reachable]
    return np.clip(smoothed, 0.0, None)


def _settings(attrs, params):
    """Kernel sd and GLM alpha: config keys kernel_sd_ms and glm_alpha, else nlb_tools' values for the dataset."""
    dataset = str(attrs.get("dataset", ""))
    matches = [name for name in NLB_SETTINGS if dataset.startswith(name)]
    kernel_sd_ms, alpha = NLB_SETTINGS[max(matches, key=len)] if matches else DEFAULT_SETTINGS
    if params.get("kernel_sd_ms") is not None:
        kernel_sd_ms = params["kernel_sd_ms"]
    if params.get("glm_alpha") is not None:
        alpha = params["glm_alpha"]
    return kernel_sd_ms, alpha


def _unit_means(spikes):
    """Each unit's mean count over its observed bins (0 for a unit never observed), shaped to broadcast."""
    observed = ~np.isnan(spikes)
    counts = np.where(observed, spikes, 0.0).sum(axis=(0, 1))
    n_observed = observed.sum(axis=(0, 1))
    return np.divide(counts, n_observed, out=np.zeros_like(counts), where=n_observed > 0)


def _flatten_time(array):
    return np.asarray(array, dtype=np.float64).reshape(-1, np.shape(array)[-1])
