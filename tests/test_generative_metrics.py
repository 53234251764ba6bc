"""DCI, linear decoding and LDNS's spike-realism scores on data whose answer is known."""

import numpy as np
import pytest
from scipy.stats import special_ortho_group

from latentdyn.metrics.disentanglement import (
    angle_targets,
    dci,
    disentanglement_completeness,
    linear_decoding_r2,
)
from latentdyn.metrics.spike_realism import (
    count_correlations,
    isi_stat_rmse,
    isi_stats,
    pairwise_correlation_rmse,
    poisson_spikes,
    population_count_kl,
    realism_row,
    split_half,
)

N_TRAIN, N_TEST, N_FACTORS = 1000, 500, 3
BIN_WIDTH_S = 0.02


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).uniform(-1, 1, size=(N_TRAIN + N_TEST, N_FACTORS))


def dci_of(code, factors):
    return dci(code[:N_TRAIN], factors[:N_TRAIN], code[N_TRAIN:], factors[N_TRAIN:], seed=0)


@pytest.fixture(scope="module")
def aligned(factors):
    code = factors + 0.01 * np.random.default_rng(1).normal(size=factors.shape)
    return code, dci_of(code, factors)


def test_importance_matrix_extremes():
    assert disentanglement_completeness(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert disentanglement_completeness(np.ones((4, 3))) == pytest.approx((0.0, 0.0), abs=1e-12)
    # one code dim carries both factors (D of that row 0), the other is unused (weight 0); each factor
    # lives in one dim (C = 1)
    assert disentanglement_completeness([[1.0, 1.0], [0.0, 0.0]]) == pytest.approx((0.0, 1.0), abs=1e-12)
    assert disentanglement_completeness(np.zeros((2, 2))) == (0.0, 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        disentanglement_completeness(np.ones((3, 1)))


def test_dci_of_the_factors_themselves_is_near_one(aligned):
    _, scores = aligned
    assert scores["disentanglement"] > 0.9
    assert scores["completeness"] > 0.9
    assert scores["informativeness"] > 0.9
    assert scores["importance"].shape == (N_FACTORS, N_FACTORS)
    np.testing.assert_allclose(scores["importance"].sum(axis=0), 1.0)


def test_rotating_the_code_lowers_disentanglement_not_informativeness(aligned, factors):
    code, scores = aligned
    rotated = dci_of(code @ special_ortho_group.rvs(N_FACTORS, random_state=1), factors)
    assert rotated["disentanglement"] < scores["disentanglement"] - 0.3
    assert rotated["completeness"] < scores["completeness"] - 0.3
    assert rotated["informativeness"] > 0.9


def test_a_code_of_noise_is_not_informative(factors):
    noise = np.random.default_rng(2).normal(size=factors.shape)
    assert dci_of(noise, factors)["informativeness"] < 0.1


def test_linear_decoding_of_a_linear_target_and_of_noise():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(20, 30, 5))  # trials × bins × dims, flattened into samples
    targets = features @ rng.normal(size=(5, 2)) + 0.05 * rng.normal(size=(20, 30, 2))
    assert linear_decoding_r2(features[:15], targets[:15], features[15:], targets[15:]) > 0.95
    noise = rng.normal(size=features.shape)
    assert linear_decoding_r2(noise[:15], targets[:15], noise[15:], targets[15:]) < 0.1


def test_angle_targets_are_cos_sin():
    targets = angle_targets(np.array([0.0, np.pi / 2, np.pi]))
    np.testing.assert_allclose(targets, [[1, 0], [0, 1], [-1, 0]], atol=1e-12)


@pytest.fixture(scope="module")
def rates():
    return np.random.default_rng(4).gamma(2.0, 0.05, size=(200, 50, 30))  # spikes per bin


def test_poisson_spikes_mean_matches_the_rates():
    rates = np.array([0.0, 0.1, 1.0, 5.0])
    spikes = poisson_spikes(np.broadcast_to(rates, (20000, 4)), seed=0)
    assert spikes.dtype == np.int64
    np.testing.assert_allclose(spikes.mean(axis=0), rates, atol=0.05)
    assert np.all(spikes[:, 0] == 0)
    np.testing.assert_array_equal(poisson_spikes(rates, seed=7), poisson_spikes(rates, seed=7))
    with pytest.raises(ValueError, match="non-negative"):
        poisson_spikes([-0.1])


def test_population_count_kl_near_zero_for_the_same_rates_not_for_doubled(rates):
    real = poisson_spikes(rates, seed=1)
    same = population_count_kl(poisson_spikes(rates, seed=2), real)
    doubled = population_count_kl(poisson_spikes(2 * rates, seed=3), real)
    assert population_count_kl(real, real) == 0.0
    assert same < 0.02
    assert doubled > 50 * same


def correlated_spikes(seed, n_trials=200, n_bins=50, n_neurons=20):
    """Every neuron driven by one shared gain per bin: count correlations about 0.33 between all pairs."""
    rng = np.random.default_rng(seed)
    gain = rng.gamma(2.0, 0.5, size=(n_trials, n_bins, 1))
    return poisson_spikes(np.broadcast_to(gain, (n_trials, n_bins, n_neurons)), seed=seed + 1)


def test_correlation_rmse_small_for_the_same_source_large_for_an_independent_one():
    real = correlated_spikes(10)
    independent = poisson_spikes(np.ones(real.shape), seed=12)  # same mean rate, no shared gain
    same = pairwise_correlation_rmse(correlated_spikes(20), real)
    different = pairwise_correlation_rmse(independent, real)
    assert same < 0.05
    assert different > 0.25


def test_isi_spreads_spikes_within_a_bin_and_stays_within_a_trial():
    # spikes at 0.5, 2 + 1/3, 2 + 2/3 bins: ISIs 11/6 and 1/3
    mean, sd, n = isi_stats(np.array([[[1], [0], [2]]]), bin_width_s=1.0)
    np.testing.assert_allclose(mean, [13 / 12])
    np.testing.assert_allclose(sd, [0.75])
    np.testing.assert_array_equal(n, [2])
    # one spike in each of two trials: no interval across the trial boundary
    _, _, n = isi_stats(np.array([[[0], [1]], [[1], [0]]]), bin_width_s=1.0)
    np.testing.assert_array_equal(n, [0])


def test_isi_mean_rmse_detects_a_rate_change(rates):
    real = poisson_spikes(rates, seed=1)
    same_mean, _ = isi_stat_rmse(poisson_spikes(rates, seed=2), real, BIN_WIDTH_S)
    doubled_mean, _ = isi_stat_rmse(poisson_spikes(2 * rates, seed=3), real, BIN_WIDTH_S)
    assert doubled_mean > 5 * same_mean


def test_a_silent_neuron_gives_no_nan(rates):
    real, generated = poisson_spikes(rates, seed=1), poisson_spikes(rates, seed=2)
    real[..., 0] = 0
    generated[..., 0] = 0
    assert np.all(count_correlations(real)[0] == 0)
    row = realism_row(generated, real, BIN_WIDTH_S)
    assert set(row) == {"kl_population_count", "rmse_pairwise_corr", "rmse_isi_mean", "rmse_isi_sd"}
    assert all(np.isfinite(value) for value in row.values())
    # the silent neuron is skipped from the ISI scores rather than scored: same numbers without it
    assert isi_stat_rmse(generated, real, BIN_WIDTH_S) == pytest.approx(
        isi_stat_rmse(generated[..., 1:], real[..., 1:], BIN_WIDTH_S)
    )
    with pytest.raises(ValueError, match="inter-spike intervals"):
        isi_stat_rmse(generated[..., :1], real[..., :1], BIN_WIDTH_S)


def test_split_half_gives_two_disjoint_equal_halves():
    real = np.arange(7)[:, None, None] * np.ones((1, 2, 3), dtype=int)
    first, second = split_half(real, seed=0)
    assert first.shape == second.shape == (3, 2, 3)
    assert not set(first[:, 0, 0]) & set(second[:, 0, 0])


def test_realism_rejects_fractional_counts():
    with pytest.raises(ValueError, match="non-negative integers"):
        population_count_kl(np.full((2, 3, 4), 0.5), np.zeros((2, 3, 4)))
