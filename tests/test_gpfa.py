"""The gpfa kind (models/gpfa): what it recovers from data of a known linear-Gaussian latent model, and
one clear line for input it cannot take."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from latentdyn.data.format import validate_model_output
from latentdyn.data.prepare import prepare
from latentdyn.errors import InputError
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.metrics.nlb import bits_per_spike
from latentdyn.models.gpfa import model as gpfa
from latentdyn.models.kinds import get_kind
from latentdyn.models.pipeline import train_and_predict

ATTRS = {"dataset": "linear_gaussian", "bin_width_s": 0.02}
N_LATENTS = 3


def linear_gaussian(seed=0, n_train=48, n_eval=16, bins=50, heldin=30, heldout=5, forward=5):
    """Poisson counts whose log-rates are linear in 3 smooth Gaussian latents (white noise smoothed over
    ~80 ms), in the binned format's keys, with the evaluation trials' truth. One spike per 20 ms bin on
    average: enough signal that the latents are recoverable from 30 units. 50 bins: Elephant's 20-bin
    training segments then overlap at random."""
    rng = np.random.default_rng(seed)
    n_trials, n_units = n_train + n_eval, heldin + heldout
    latents = gaussian_filter1d(rng.standard_normal((n_trials, bins + forward, N_LATENTS)), 4.0, axis=1)
    latents /= latents.std()
    rates = np.exp(latents @ (0.5 * rng.standard_normal((N_LATENTS, n_units))))
    spikes = rng.poisson(rates).astype(np.float32)
    arrays = {}
    for split, rows in (("train", slice(0, n_train)), ("eval", slice(n_train, None))):
        for units, columns in (("heldin", slice(0, heldin)), ("heldout", slice(heldin, None))):
            arrays[f"{split}_spikes_{units}"] = spikes[rows, :bins, columns]
            arrays[f"{split}_spikes_{units}_forward"] = spikes[rows, bins:, columns]
        arrays[f"{split}_true_rates_heldin"] = rates[rows, :bins, :heldin].astype(np.float32)
        arrays[f"{split}_true_rates_heldout"] = rates[rows, :bins, heldin:].astype(np.float32)
        arrays[f"{split}_true_latents"] = latents[rows, :bins].astype(np.float32)
    return arrays


def params(**overrides):
    return get_kind("gpfa").resolve({"kind": "gpfa", "latent_size": N_LATENTS, "em_max_iters": 40, **overrides})


def canonical_correlations(a, b):
    """Canonical correlations of two (samples × dims) arrays: singular values of their orthonormal bases."""
    bases = [np.linalg.qr(x - x.mean(axis=0))[0] for x in (a, b)]
    return np.linalg.svd(bases[0].T @ bases[1], compute_uv=False)


@pytest.fixture(scope="module")
def data():
    return linear_gaussian()


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """A gpfa run through the pipeline (fit, model.pt, predict) and the global random state around it."""
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    outputs, _ = train_and_predict(params(), data, ATTRS, run_dir=tmp_path_factory.mktemp("gpfa"), seed=0, device="cpu")
    return outputs, before, np.random.get_state()[1].copy()


def test_latents_span_the_true_latent_subspace_and_rates_beat_smoothing(data, fitted):
    outputs, _, _ = fitted
    inferred = outputs["latents/eval_factors"]
    assert inferred.shape == (16, 50, N_LATENTS)
    correlations = canonical_correlations(inferred.reshape(-1, N_LATENTS), data["eval_true_latents"].reshape(-1, N_LATENTS))
    assert correlations.min() > 0.9, correlations
    truth = np.concatenate([data["eval_true_rates_heldin"], data["eval_true_rates_heldout"]], axis=-1)
    smoothing_params = get_kind("smoothing").resolve({"kind": "smoothing", "kernel_sd_ms": 80})
    smoothing = get_kind("smoothing").implementation()
    prepared = prepare(data, ATTRS, valid_fraction=None, seed=0)
    smoothed = smoothing.predict(smoothing.fit(smoothing.build(smoothing_params, prepared.shapes), prepared, smoothing_params),
                                 prepared, smoothing_params)
    r2 = {name: rate_r2(np.concatenate([out["eval_rates_heldin"], out["eval_rates_heldout"]], axis=-1), truth)
          for name, out in (("gpfa", outputs), ("smoothing", smoothed))}
    assert r2["gpfa"] > r2["smoothing"] + 0.1 and r2["gpfa"] > 0.7, r2


def test_glm_readout_predicts_heldout_neurons_better_than_their_mean(data, fitted):
    outputs, _, _ = fitted
    assert bits_per_spike(outputs["eval_rates_heldout"], data["eval_spikes_heldout"]) > 0.1


def test_outputs_are_in_the_submission_format_and_fitting_is_deterministic(data, fitted):
    outputs, before, after = fitted
    validate_model_output(outputs, data, "<gpfa output>")
    assert {"eval_rates_heldin_forward", "eval_rates_heldout_forward", "latents/train_factors"} <= outputs.keys()
    assert np.array_equal(before, after)  # the global random state Elephant draws from is left as it was
    prepared = prepare(data, ATTRS, valid_fraction=None, seed=0)
    again = gpfa.predict(gpfa.fit(gpfa.build(params(), prepared.shapes), prepared, params()), prepared, params())
    for key, value in outputs.items():
        assert np.array_equal(value, again[key]), key


def test_gpfa_on_coarser_bins_gives_latents_on_the_data_bins(data):
    prepared = prepare(data, ATTRS, valid_fraction=None, seed=0)
    coarse = params(bin_factor=2)
    outputs = gpfa.predict(gpfa.fit(gpfa.build(coarse, prepared.shapes), prepared, coarse), prepared, coarse)
    validate_model_output(outputs, data, "<gpfa output>")
    correlations = canonical_correlations(outputs["latents/eval_factors"].reshape(-1, N_LATENTS),
                                          data["eval_true_latents"].reshape(-1, N_LATENTS))
    assert correlations.min() > 0.85, correlations


def spoiled(change):
    """linear_gaussian data, small, changed by `change(arrays)`."""
    arrays = linear_gaussian(n_train=12, n_eval=4, bins=20)
    change(arrays)
    return arrays


def no_spikes_in_eval_trial_2(arrays):
    arrays["eval_spikes_heldin"][2] = 0


def unit_3_silent(arrays):
    arrays["train_spikes_heldin"][..., 3] = 0


def unit_4_repeats_unit_0(arrays):
    arrays["train_spikes_heldin"][..., 4] = arrays["train_spikes_heldin"][..., 0]


def unobserved_bin(arrays):
    arrays["train_spikes_heldin"][0, 5, 1] = np.nan


@pytest.mark.parametrize(
    "change, overrides, key, problem",
    [
        (no_spikes_in_eval_trial_2, {}, "eval_spikes_heldin", r"trial\(s\) \[2\] have no held-in spikes at all"),
        (unit_3_silent, {}, "train_spikes_heldin", r"held-in unit\(s\) \[3\] never fire in the training trials"),
        (unit_4_repeats_unit_0, {}, "train_spikes_heldin", "span 29 of 30 dimensions"),
        (unobserved_bin, {}, "train_spikes_heldin", r"1 unobserved \(NaN\) entries.*unobserved: zero_fill"),
        (lambda arrays: None, {"latent_size": 31}, "train_spikes_heldin", "latent_size 31 exceeds the 30 held-in units"),
        (lambda arrays: None, {"bin_factor": 3}, "train_spikes_heldin", "20 bins per trial do not divide"),
    ],
    ids=["trial without spikes", "silent unit", "repeated unit", "NaN", "too many latents", "bin_factor"],
)
def test_input_gpfa_cannot_take_is_one_line_naming_the_key(change, overrides, key, problem):
    arrays = spoiled(change)
    prepared = prepare(arrays, ATTRS, valid_fraction=None, seed=0)
    with pytest.raises(InputError, match=problem) as error:
        gpfa.fit(gpfa.build(params(**overrides), prepared.shapes), prepared, params(**overrides))
    assert error.value.path == "linear_gaussian" and error.value.field == key
    assert "\n" not in str(error.value)


def test_zero_fill_counts_unobserved_bins_as_no_spikes():
    arrays = spoiled(unobserved_bin)
    filled = params(unobserved="zero_fill", em_max_iters=5)
    prepared = prepare(arrays, ATTRS, valid_fraction=None, seed=0)
    outputs = gpfa.predict(gpfa.fit(gpfa.build(filled, prepared.shapes), prepared, filled), prepared, filled)
    validate_model_output(outputs, arrays, "<gpfa output>")
