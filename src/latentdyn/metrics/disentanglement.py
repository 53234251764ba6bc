"""How well a model's code lays out the behaviour it was not told about: DCI and linear decoding.

GNOCCHI (McCart et al. 2024, arXiv 2407.21195) claims a diffusion model's code is more disentangled
w.r.t. reach behaviour than an LFADS-like autoencoder's; it gives neither code nor its exact metrics, so
these follow InfoDiffusion's choice (Wang et al. 2023), DCI, and the decoding check of its summaries.

DCI (Eastwood & Williams 2018, "A framework for the quantitative evaluation of disentangled
representations"): one regressor per factor predicts the factor from the whole code; its feature
importances form column j of the importance matrix R (code dims × factors).
- disentanglement D = Σ_i ρ_i (1 − H_K(P_i·)), P_ij = R_ij / Σ_k R_ik, entropy in log base K (factors),
  ρ_i = Σ_j R_ij / Σ R: a code dim that matters for one factor only scores 1, weighted by its share.
- completeness C = Σ_j ρ̃_j (1 − H_D(P̃_·j)), P̃ = R normalised per column, log base D (code dims),
  ρ̃_j = Σ_i R_ij / Σ R: a factor captured by one code dim scores 1. Weighting by each factor's share is
  disentanglement_lib's choice; each tree's importances sum to 1, so the shares are 1/K and C is the
  paper's plain mean over factors unless a factor's trees never split (a zero column, weight 0).
- informativeness: the regressors' R² on held-out samples, averaged over factors (the paper's
  prediction error, as R² so that higher is better like D and C).
The regressors are scikit-learn gradient-boosted trees (the paper's choice for its importances), kept
small (GBT_ESTIMATORS trees of depth GBT_DEPTH) so a few thousand samples × 32 dims fit in seconds.

Arrays are samples × dims; leading axes (e.g. trials × bins) are flattened into samples.
"""

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

GBT_ESTIMATORS = 50
GBT_DEPTH = 3
RIDGE_ALPHAS = np.logspace(-3, 3, 7)
RIDGE_CV_FOLDS = 5


def _samples(array, name):
    array = np.asarray(array, dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"{name} must be samples × dims (got shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array.reshape(-1, array.shape[-1])


def _one_minus_entropy(weights, axis):
    """1 − entropy of `weights` normalised along `axis`, in log base (length of that axis); 0 log 0 = 0.

    A slice with no weight at all gets 0; it is given no weight in D and C anyway.
    """
    base = weights.shape[axis]
    totals = weights.sum(axis=axis, keepdims=True)
    probs = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    logs = np.log(probs, out=np.zeros_like(probs), where=probs > 0)
    entropy = -np.sum(probs * logs, axis=axis) / np.log(base)
    return np.where(totals.squeeze(axis) > 0, 1.0 - entropy, 0.0)


def disentanglement_completeness(importance):
    """(D, C) of an importance matrix, code dims × factors (non-negative; see the module docstring).

    Needs at least two code dims and two factors: an entropy in log base 1 is undefined. A matrix of
    zeros (no regressor ever split) scores 0 for both.
    """
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    if importance.ndim != 2 or min(importance.shape) < 2:
        raise ValueError(f"importance must be code dims × factors, both at least 2 (got {importance.shape})")
    total = importance.sum()
    if total == 0:
        return 0.0, 0.0
    code_share = importance.sum(axis=1) / total
    factor_share = importance.sum(axis=0) / total
    disentanglement = np.sum(code_share * _one_minus_entropy(importance, axis=1))
    completeness = np.sum(factor_share * _one_minus_entropy(importance, axis=0))
    return float(disentanglement), float(completeness)


def dci(codes_train, factors_train, codes_test, factors_test, *, seed=0):
    """DCI of a code w.r.t. known factors (Eastwood & Williams 2018), trees fitted on the train samples.

    codes_*: samples × code dims, factors_*: samples × factors (continuous, e.g. hand position or
    angle_targets of the reach angle); the caller splits by trial so that no trial is in both. `seed`
    fixes the trees. Returns disentanglement, completeness, informativeness (mean test R² over factors)
    and importance (code dims × factors, each column a fitted tree ensemble's feature_importances_).
    """
    codes_train, codes_test = _samples(codes_train, "codes_train"), _samples(codes_test, "codes_test")
    factors_train, factors_test = _samples(factors_train, "factors_train"), _samples(factors_test, "factors_test")
    if len(codes_train) != len(factors_train) or len(codes_test) != len(factors_test):
        raise ValueError("codes and factors must have the same number of samples in each split")
    if codes_train.shape[1] != codes_test.shape[1] or factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError("train and test must have the same code dims and the same factors")
    importance = np.zeros((codes_train.shape[1], factors_train.shape[1]))
    test_r2 = []
    for j in range(factors_train.shape[1]):
        trees = GradientBoostingRegressor(n_estimators=GBT_ESTIMATORS, max_depth=GBT_DEPTH, random_state=seed)
        trees.fit(codes_train, factors_train[:, j])
        importance[:, j] = trees.feature_importances_
        test_r2.append(r2_score(factors_test[:, j], trees.predict(codes_test)))
    disentanglement, completeness = disentanglement_completeness(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(np.mean(test_r2)),
        "importance": importance,
    }


def linear_decoding_r2(features_train, targets_train, features_test, targets_test):
    """Test R² (averaged over targets) of a ridge decoder fitted on the train samples.

    The check GNOCCHI's summaries report and LDNS's rates → velocity decoder: what a linear readout can
    get from the features. alpha from RIDGE_ALPHAS by unshuffled 5-fold CV on the train samples (as the
    project's other decoders), so flattened trials stay mostly whole within a fold.
    """
    features_train, features_test = _samples(features_train, "features_train"), _samples(features_test, "features_test")
    targets_train, targets_test = _samples(targets_train, "targets_train"), _samples(targets_test, "targets_test")
    search = GridSearchCV(Ridge(), {"alpha": RIDGE_ALPHAS}, cv=RIDGE_CV_FOLDS)
    search.fit(features_train, targets_train)
    return float(r2_score(targets_test, search.predict(features_test)))


def angle_targets(angle_rad):
    """A reach angle as (cos θ, sin θ), n × 2: continuous across ±π, so a regressor can target it (LDNS
    conditions on the same pair)."""
    angle_rad = np.asarray(angle_rad, dtype=np.float64).reshape(-1)
    return np.stack([np.cos(angle_rad), np.sin(angle_rad)], axis=1)
