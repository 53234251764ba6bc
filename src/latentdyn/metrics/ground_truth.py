"""Metrics against known ground truth (Sedler, Versteeg & Pandarinath 2023, `paper_src/metrics.py`).

- rate R²: R² of predicted vs true rates, computed per neuron over trials × time, averaged over neurons.
- state R²: an affine least-squares map from the TRUE latents to the INFERRED latents, R² per inferred
  dimension averaged and floored at -10. Mapping true -> inferred penalises inferred dimensions the
  true system does not explain, so a model with surplus latent dimensions scores lower.
"""

import numpy as np

STATE_R2_FLOOR = -10.0


def _flatten(array):
    array = np.asarray(array, dtype=np.float64)
    return array.reshape(-1, array.shape[-1])


def r2_per_column(predicted, target):
    """Coefficient of determination of each column of `target` (2-D, rows are samples).

    A constant target column has no variance to explain: its R² is −inf. In state R² that is what a
    dead inferred dimension scores, which the −10 floor then bounds (as in the paper's code).
    """
    residual = np.sum((target - predicted) ** 2, axis=0)
    total = np.sum((target - target.mean(axis=0)) ** 2, axis=0)
    varies = np.ptp(target, axis=0) > 0
    return np.where(varies, 1.0 - residual / np.where(varies, total, 1.0), -np.inf)


def rate_r2(predicted_rates, true_rates):
    return float(np.mean(r2_per_column(_flatten(predicted_rates), _flatten(true_rates))))


def affine_fit(source, target):
    """Least-squares affine prediction of `target` from `source` (both 2-D)."""
    design = np.hstack([source, np.ones((len(source), 1))])
    weights, *_ = np.linalg.lstsq(design, target, rcond=None)
    return design @ weights


def state_r2(true_latents, inferred_latents):
    true_flat, inferred_flat = _flatten(true_latents), _flatten(inferred_latents)
    score = np.mean(r2_per_column(affine_fit(true_flat, inferred_flat), inferred_flat))
    return float(max(score, STATE_R2_FLOOR))


def poisson_nll_per_bin(rates, spikes):
    """Mean Poisson NLL (with log n!) per observed entry; rates in spikes per bin."""
    from scipy.special import gammaln

    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    observed = ~np.isnan(spikes)
    r, n = np.maximum(rates[observed], 1e-9), spikes[observed]
    return float(np.mean(r - n * np.log(r) + gammaln(n + 1)))
