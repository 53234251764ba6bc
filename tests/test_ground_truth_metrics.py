"""Rate R², state R² (with its −10 floor and direction) and NLL on cases with known answers."""

import numpy as np
import pytest
from scipy.stats import poisson

from latentdyn.metrics.ground_truth import STATE_R2_FLOOR, poisson_nll_per_bin, rate_r2, state_r2

rng = np.random.default_rng(0)


def test_rate_r2_perfect_and_mean_prediction():
    rates = rng.gamma(2.0, 1.0, size=(10, 20, 4))
    assert rate_r2(rates, rates) == pytest.approx(1.0)
    mean = np.broadcast_to(rates.reshape(-1, 4).mean(0), rates.shape)
    assert rate_r2(mean, rates) == pytest.approx(0.0, abs=1e-12)


def test_rate_r2_is_averaged_over_neurons():
    truth = rng.normal(size=(50, 2))
    predicted = truth.copy()
    predicted[:, 1] = truth[:, 1].mean()  # neuron 0 perfect (1), neuron 1 mean (0)
    assert rate_r2(predicted, truth) == pytest.approx(0.5)


def test_state_r2_invariant_to_affine_maps_of_the_inferred_state():
    true = rng.normal(size=(20, 30, 3))
    mixing = rng.normal(size=(3, 3))
    assert state_r2(true, true @ mixing + 5.0) == pytest.approx(1.0)


def test_state_r2_maps_true_to_inferred_so_surplus_dimensions_are_penalised():
    true = rng.normal(size=(20, 30, 3))
    noise = rng.normal(size=(20, 30, 3))
    inferred = np.concatenate([true, noise], axis=-1)  # 3 explained + 3 unexplained dims
    assert state_r2(true, inferred) == pytest.approx(0.5, abs=0.02)
    # the reverse direction (inferred -> true) would score 1: check we did not implement that
    assert state_r2(inferred[..., :3], true) == pytest.approx(1.0)


def test_state_r2_floor_bounds_a_dead_inferred_dimension():
    true = rng.normal(size=(4, 5, 3))
    inferred = np.concatenate([true[..., :1], np.full((4, 5, 1), 0.7)], axis=-1)
    assert state_r2(true, inferred) == STATE_R2_FLOOR == -10.0


def test_poisson_nll_matches_scipy_and_skips_nan():
    rates = np.array([[0.5, 2.0], [1.0, 3.0]])
    spikes = np.array([[1.0, np.nan], [0.0, 4.0]])
    expected = -np.mean([poisson.logpmf(1, 0.5), poisson.logpmf(0, 1.0), poisson.logpmf(4, 3.0)])
    assert poisson_nll_per_bin(rates, spikes) == pytest.approx(expected)
