"""What stitching buys per session (README §10, lfads-torch's tutorial protocol): hand velocity decoded
from a stitched model's factors within a session and across sessions, against smoothed spikes, and each
session's validation reconstruction.

Protocol (§10): ridge regression from factors to velocity, alpha by grid search, grouped 5-fold cross-
validation by trial. The binned behaviour is already lagged (the spec's behaviour lag: 100 ms for the
reaching task), so bin t's factors decode bin t's velocity. "Within": decoder and test trials from the
same session, cross-validated. "Across": trained on every other session's factors, tested on this
session's, possible only because stitched factors share one space. Smoothed spikes: the session's
held-in spikes smoothed with a Gaussian of SPIKE_SMOOTHING_MS, within the session, the tutorial's baseline.
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold

from latentdyn.metrics.nlb import poisson_nll

RIDGE_ALPHAS = np.logspace(-3, 3, 7)
FOLDS = 5
SPIKE_SMOOTHING_MS = 40.0  # ours: §10 does not give the tutorial's kernel


def session_trials(data, attrs, output, latent="factors"):
    """(factors, smoothed held-in spikes, velocity) of a session's trials with behaviour, train then eval:
    trials × bins × channels each."""
    sigma = SPIKE_SMOOTHING_MS / (1000 * attrs["bin_width_s"])
    parts = [split for split in ("train", "eval") if f"{split}_behavior" in data]
    factors = np.concatenate([output[f"latents/{split}_{latent}"] for split in parts])
    spikes = np.concatenate([np.nan_to_num(data[f"{split}_spikes_heldin"]) for split in parts])
    velocity = np.concatenate([data[f"{split}_behavior"] for split in parts])
    return factors, gaussian_filter1d(spikes, sigma, axis=1), velocity


def within_r2(features, velocity):
    """Grouped (by trial) 5-fold cross-validated R² of the best ridge alpha."""
    x, y, groups = _rows(features, velocity)
    search = GridSearchCV(Ridge(), {"alpha": RIDGE_ALPHAS}, cv=GroupKFold(FOLDS)).fit(x, y, groups=groups)
    return float(search.best_score_)


def across_r2(train_features, train_velocity, test_features, test_velocity):
    """R² on the test trials of a ridge decoder fit to the training trials (alpha by grouped CV on them)."""
    x, y, groups = _rows(train_features, train_velocity)
    search = GridSearchCV(Ridge(), {"alpha": RIDGE_ALPHAS}, cv=GroupKFold(FOLDS)).fit(x, y, groups=groups)
    test_x, test_y, _ = _rows(test_features, test_velocity)
    return float(r2_score(test_y, search.predict(test_x)))


def decoding_rows(sessions):
    """Per session (a list of session_trials triples, in session order): within- and across-session
    factor decoding R² and smoothed-spike decoding R²."""
    rows = []
    for s, (factors, spikes, velocity) in enumerate(sessions):
        others = [other for o, other in enumerate(sessions) if o != s]
        across = np.nan
        if others:
            across = across_r2(np.concatenate([o[0] for o in others]), np.concatenate([o[2] for o in others]),
                               factors, velocity)
        rows.append({"session": s, "factors_within": within_r2(factors, velocity), "factors_across": across,
                     "smoothed_spikes": within_r2(spikes, velocity)})
    return rows


def validation_nll(stitched, stitched_attrs, stitched_output):
    """Each session's mean Poisson NLL of its held-in validation spikes under the stitched model's rates
    (cycled copies, NaN, left out): the validation reconstruction, per session."""
    n_heldin = [s["n_heldin"] for s in stitched_attrs["sessions"]]
    bounds = np.cumsum([0, *n_heldin])
    spikes, rates = stitched["valid_spikes_heldin"], stitched_output["valid_rates_heldin"]
    return [poisson_nll(rates[..., a:b], spikes[..., a:b]) / np.sum(~np.isnan(spikes[..., a:b]))
            for a, b in zip(bounds[:-1], bounds[1:])]


def _rows(features, velocity):
    """Bins as rows, each labelled with its trial; bins with unknown velocity dropped."""
    trials = np.repeat(np.arange(len(features)), features.shape[1])
    x, y = features.reshape(-1, features.shape[-1]), velocity.reshape(-1, velocity.shape[-1])
    known = ~np.isnan(y).any(axis=1) & ~np.isnan(x).any(axis=1)
    return x[known], y[known], trials[known]
