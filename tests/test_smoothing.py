"""The spike-smoothing baseline: nlb_tools' recipe, NaN handling, and sensible rates."""

import numpy as np
import pytest
from scipy.signal.windows import gaussian

from latentdyn.errors import InputError
from latentdyn.metrics.nlb import evaluate_submission
from latentdyn.data.prepare import prepare
from latentdyn.models.smoothing.model import build, fit, gaussian_window, predict, smooth_spikes
from nlb_reference import BIN_WIDTHS_S, load_reference_vector

INPUT_KEYS = (
    "train_spikes_heldin",
    "train_spikes_heldout",
    "eval_spikes_heldin",
    "train_spikes_heldin_forward",
    "train_spikes_heldout_forward",
)


def run(data, bin_width_s=0.005, params=None, dataset="mc_maze"):
    attrs = {"dataset": dataset, "bin_width_s": bin_width_s}
    params = params or {}
    prepared = prepare(data, attrs, valid_fraction=None, seed=0)
    return predict(fit(build(params, prepared.shapes), prepared, params), prepared, params)


def simulated_session(seed=0, n_train=60, n_eval=20, n_bins=80, n_forward=10, n_heldin=20, n_heldout=6):
    """Poisson spikes from smooth latent rates: returns (binned arrays, true rates by split and units)."""
    rng = np.random.default_rng(seed)
    n_trials, n_time = n_train + n_eval, n_bins + n_forward
    time = np.arange(n_time) / n_time
    phases = rng.uniform(0, 2 * np.pi, size=(n_trials, 1, 3))
    latents = np.sin(2 * np.pi * np.array([1.0, 1.5, 0.7]) * time[None, :, None] + phases)
    loadings = rng.normal(0, 0.8, size=(3, n_heldin + n_heldout))
    rates = np.exp(latents @ loadings - 1.5)
    spikes = rng.poisson(rates).astype(float)
    window, forward = slice(0, n_bins), slice(n_bins, n_time)
    heldin, heldout = slice(0, n_heldin), slice(n_heldin, None)
    train, evaluation = slice(0, n_train), slice(n_train, None)
    data = {
        "train_spikes_heldin": spikes[train, window, heldin],
        "train_spikes_heldout": spikes[train, window, heldout],
        "eval_spikes_heldin": spikes[evaluation, window, heldin],
        "train_spikes_heldin_forward": spikes[train, forward, heldin],
        "train_spikes_heldout_forward": spikes[train, forward, heldout],
    }
    truth = {"eval_heldin": rates[evaluation, window, heldin], "eval_heldout": rates[evaluation, window, heldout]}
    return data, truth


def correlation(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def test_smoothing_matches_nlb_tools_convolution():
    spikes = np.random.default_rng(0).poisson(0.5, size=(4, 140, 3)).astype(float)
    window = gaussian(60, 10, sym=True)  # nlb_tools: gaussian(int(6·50/5), int(50/5))
    window /= window.sum()
    expected = np.apply_along_axis(lambda trace: np.convolve(trace, window, "same"), 1, spikes)
    np.testing.assert_allclose(gaussian_window(50, 5), window, rtol=0, atol=0)
    np.testing.assert_allclose(smooth_spikes(spikes, window), expected, rtol=0, atol=1e-14)


def test_kernel_shorter_than_a_bin_is_refused():
    with pytest.raises(InputError, match="kernel_sd_ms"):
        gaussian_window(10, 20)


def test_nan_bins_are_filled_from_observed_neighbours():
    spikes = np.ones((2, 50, 2))
    spikes[0, 20:25, 0] = np.nan
    spikes[1, :, 1] = np.nan  # a unit never observed in a trial gets its mean count elsewhere
    smoothed = smooth_spikes(spikes, gaussian_window(20, 5))
    reference = smooth_spikes(np.ones((1, 50, 1)), gaussian_window(20, 5))[0, :, 0]
    np.testing.assert_allclose(smoothed[0, :, 0], reference, atol=1e-12)
    np.testing.assert_allclose(smoothed[1, :, 1], 1.0)


@pytest.mark.parametrize("bin_group", ["bin5", "bin20"])
def test_reference_vector_gives_positive_co_bps(bin_group):
    targets, _, _ = load_reference_vector(bin_group)
    output = run({key: targets[key] for key in INPUT_KEYS}, BIN_WIDTHS_S[bin_group])
    expected_shapes = {
        "train_rates_heldin": targets["train_spikes_heldin"].shape,
        "train_rates_heldout": targets["train_spikes_heldout"].shape,
        "eval_rates_heldin": targets["eval_spikes_heldin"].shape,
        "eval_rates_heldout": targets["eval_spikes_heldout"].shape,
        "eval_rates_heldin_forward": targets["eval_spikes_heldin_forward"].shape,
        "eval_rates_heldout_forward": targets["eval_spikes_heldout_forward"].shape,
    }
    assert {key: value.shape for key, value in output.items()} == expected_shapes
    assert all(
        value.dtype == np.float32 and np.all(np.isfinite(value)) and np.all(value >= 0) for value in output.values()
    )
    assert evaluate_submission(targets, output, "mc_maze")["co-bps"] > 0


def test_rates_follow_the_true_rates_of_simulated_data():
    data, truth = simulated_session()
    output = run(data, params={"kernel_sd_ms": 40, "glm_alpha": 0.01})
    assert correlation(output["eval_rates_heldin"], truth["eval_heldin"]) > 0.6
    assert correlation(output["eval_rates_heldout"], truth["eval_heldout"]) > 0.6


def test_unobserved_bins_and_missing_units_or_windows():
    data, truth = simulated_session(seed=1)
    rng = np.random.default_rng(1)
    for key in ("train_spikes_heldin", "eval_spikes_heldin", "train_spikes_heldout"):
        data[key][rng.random(data[key].shape) < 0.1] = np.nan
        data[key][::3, -15:] = np.nan  # trials cut short
    heldin_only = {key: data[key] for key in ("train_spikes_heldin", "eval_spikes_heldin")}
    assert set(run(heldin_only)) == {"train_rates_heldin", "eval_rates_heldin"}
    output = run(data)
    assert all(np.all(np.isfinite(value)) for value in output.values())
    assert correlation(output["eval_rates_heldout"], truth["eval_heldout"]) > 0.5
