"""The attractor simulators against known facts of the three systems and the paper's recipe."""

import numpy as np
import pytest

from latentdyn.data.attractors import SYSTEMS, make_attractor_dataset, split_indices

SPLIT = {"train": 64, "valid": 16, "test": 20}


@pytest.fixture(scope="module")
def lorenz():
    return make_attractor_dataset("lorenz", n_neurons=12, n_trials=100, n_steps=70, split_sizes=SPLIT, seed=3)


def test_lorenz_fixed_points_are_the_known_ones():
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    r = np.sqrt(beta * (rho - 1))
    expected = {(0.0, 0.0, 0.0), (r, r, rho - 1), (-r, -r, rho - 1)}
    found = {tuple(np.round(p, 9)) for p in SYSTEMS["lorenz"].fixed_points()}
    assert found == {tuple(np.round(p, 9)) for p in expected}


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_vector_field_vanishes_at_fixed_points(name):
    system = SYSTEMS[name]
    for point in system.fixed_points():
        assert np.allclose(system.vector_field(0.0, point), 0.0, atol=1e-9)


def test_lorenz_origin_jacobian_eigenvalues():
    values = np.sort(np.linalg.eigvals(SYSTEMS["lorenz"].jacobian(np.zeros(3))).real)
    expected = np.sort([-8.0 / 3.0, (-11 - np.sqrt(1201)) / 2, (-11 + np.sqrt(1201)) / 2])
    assert np.allclose(values, expected)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_jacobian_matches_finite_differences(name):
    system = SYSTEMS[name]
    state = np.array([1.3, -0.7, 2.1])
    eps = 1e-6
    numeric = np.stack(
        [(system.vector_field(0, state + eps * e) - system.vector_field(0, state - eps * e)) / (2 * eps) for e in np.eye(3)],
        axis=1,
    )
    assert np.allclose(system.jacobian(state), numeric, atol=1e-5)


def test_shapes_and_split_sizes(lorenz):
    arrays, attrs = lorenz
    for name, size in (("train", 64), ("valid", 16), ("eval", 20)):
        assert arrays[f"{name}_spikes_heldin"].shape == (size, 70, 12)
        assert arrays[f"{name}_true_rates_heldin"].shape == (size, 70, 12)
        assert arrays[f"{name}_true_latents"].shape == (size, 70, 3)
    ids = np.concatenate([arrays[f"{n}_trial_ids"] for n in ("train", "valid", "eval")])
    assert sorted(ids) == list(range(100))
    assert attrs["bin_width_s"] == pytest.approx(0.015008107200628729)


def test_log_rates_are_zscored_readout_of_latents(lorenz):
    arrays, _ = lorenz
    log_rates = np.log(np.concatenate([arrays[f"{n}_true_rates_heldin"] for n in ("train", "valid", "eval")]))
    latents = np.concatenate([arrays[f"{n}_true_latents"] for n in ("train", "valid", "eval")])
    flat = log_rates.reshape(-1, 12)
    assert np.allclose(flat.mean(0), 0, atol=1e-5) and np.allclose(flat.std(0), 1, atol=1e-4)
    design = np.hstack([latents.reshape(-1, 3), np.ones((flat.shape[0], 1))])
    residual = flat - design @ np.linalg.lstsq(design, flat, rcond=None)[0]
    assert np.abs(residual).max() < 1e-4
    readout = arrays["readout"]
    assert readout.shape == (3, 12) and np.all(np.diff(readout[0]) >= 0) and np.abs(readout).max() <= 0.5


def test_spikes_are_poisson_around_true_rates(lorenz):
    arrays, _ = lorenz
    rates, spikes = arrays["train_true_rates_heldin"], arrays["train_spikes_heldin"]
    assert np.all(spikes == np.round(spikes)) and spikes.min() >= 0
    standardized = (spikes.sum() - rates.sum()) / np.sqrt(rates.sum())
    assert abs(standardized) < 5
    high, low = rates > np.median(rates), rates <= np.median(rates)
    assert spikes[high].mean() > spikes[low].mean()


def test_trials_are_consecutive_pieces_of_one_trajectory(lorenz):
    arrays, _ = lorenz
    ids = np.concatenate([arrays[f"{n}_trial_ids"] for n in ("train", "valid", "eval")])
    latents = np.concatenate([arrays[f"{n}_true_latents"] for n in ("train", "valid", "eval")])[np.argsort(ids)]
    step = SYSTEMS["lorenz"].sample_step
    gap = latents[1:, 0] - latents[:-1, -1]
    within = np.linalg.norm(np.diff(latents, axis=1), axis=-1).max()
    assert np.linalg.norm(gap, axis=-1).max() <= within * 1.01 and step > 0


def test_same_seed_same_data_and_split_validation():
    a, _ = make_attractor_dataset("arneodo", 5, 30, 10, {"train": 20, "valid": 5, "test": 5}, seed=1)
    b, _ = make_attractor_dataset("arneodo", 5, 30, 10, {"train": 20, "valid": 5, "test": 5}, seed=1)
    assert np.array_equal(a["train_spikes_heldin"], b["train_spikes_heldin"])
    with pytest.raises(ValueError, match="do not add up"):
        split_indices(10, {"train": 5, "valid": 2, "test": 2}, np.random.default_rng(0))
