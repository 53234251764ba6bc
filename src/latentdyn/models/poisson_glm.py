"""Poisson GLM read-outs shared by the kinds that map features to spike counts without gradient training
(smoothing, GPFA): one scikit-learn PoissonRegressor per unit, rates clipped as nlb_tools clips them."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

RATE_FLOOR, RATE_CEILING = 1e-9, 1e20  # nlb_tools' smoothing baseline clips its GLM rates to these


def fit_poisson_glms(train_features, train_spikes, alpha):
    """One Poisson GLM per unit (column of `train_spikes`); None for a unit that never spiked.

    Rows where the unit is unobserved (NaN) are left out of its fit; a unit with no observed spike
    gets the floor rate, the GLM's limit. Units are fit in parallel threads with one BLAS/OpenMP thread
    each: the work is BLAS calls that release the GIL, and nested BLAS threads slowed these fits 5-30x.
    sklearn's newton-cholesky solver reaches the optimum of nlb_tools' objective in a few passes; the
    lbfgs default that nlb_tools uses needs ~100 on these unscaled log features and stops short of it
    (coefficients ~0.5% off).
    """
    with threadpool_limits(limits=1):
        return Parallel(n_jobs=-1, prefer="threads")(
            delayed(_fit_unit_glm)(train_features, train_spikes[:, unit], alpha) for unit in range(train_spikes.shape[1])
        )


def predict_poisson_glms(glms, features):
    rates = [np.full(len(features), RATE_FLOOR) if glm is None else glm.predict(features) for glm in glms]
    return np.clip(np.column_stack(rates), RATE_FLOOR, RATE_CEILING)


def _fit_unit_glm(train_features, unit_spikes, alpha):
    observed = ~np.isnan(unit_spikes)
    if not np.any(unit_spikes[observed] > 0):
        return None
    return PoissonRegressor(alpha=alpha, solver="newton-cholesky").fit(train_features[observed], unit_spikes[observed])


def with_bin_index(last_bin, n_forward_bins):
    """Forward-window GLM features: the window's last bin, repeated per forward bin, plus a one-hot bin index."""
    state = np.repeat(last_bin, n_forward_bins, axis=0)
    bin_index = np.tile(np.eye(n_forward_bins), (len(last_bin), 1))
    return np.hstack([state, bin_index])
