"""AutoLFADS's population-based training as plain functions (models/autolfads/pbt.py), on scripted scores:
the tournament, the perturbation and its distribution, the initial draws, the improvement-ratio stopper."""

import math

import numpy as np
import pytest

from latentdyn.models.autolfads.pbt import (
    MIN_EXPLORE_FRACTION,
    ImprovementStopper,
    SearchRange,
    initial_values,
    perturb,
    perturbation_factor,
    tournament,
)

LR = SearchRange(low=1e-5, high=5e-3, explore_weight=0.3, init=4e-3)
KL = SearchRange(low=1e-6, high=1e-4, explore_weight=0.8, log=True, bounded=False)
DROPOUT = SearchRange(low=0.0, high=0.6, explore_weight=0.3)


def test_every_pair_loser_copies_its_winner():
    scores = [5.0, 1.0, 3.0, 2.0, 4.0, 0.5]
    pairs = tournament(scores, np.random.default_rng(0))
    assert len(pairs) == 3
    seen = [worker for pair in pairs for worker in pair]
    assert sorted(seen) == list(range(6))  # each worker in exactly one pair
    for winner, loser in pairs:
        assert scores[winner] < scores[loser]


def test_pairing_is_random_and_the_best_never_loses():
    scores = [1.0, 2.0, 3.0, 4.0]
    pairings = {frozenset(tournament(scores, np.random.default_rng(seed))) for seed in range(30)}
    assert len(pairings) == 3  # 4 workers pair up 3 ways: all of them occur
    for pairs in pairings:
        assert all(loser != 0 for _, loser in pairs)


def test_nan_and_inf_always_lose_and_an_odd_worker_sits_out():
    scores = [math.nan, 10.0, math.inf, 1e9, 3.0]
    for seed in range(20):
        pairs = tournament(scores, np.random.default_rng(seed))
        assert len(pairs) == 2 and len({w for pair in pairs for w in pair}) == 4
        for winner, loser in pairs:
            if math.isfinite(scores[winner]) != math.isfinite(scores[loser]):
                assert not math.isfinite(scores[loser])
            elif math.isfinite(scores[winner]):
                assert scores[winner] < scores[loser]


def test_perturbation_stays_inside_bounds_even_from_a_bound():
    rng = np.random.default_rng(1)
    ranges = {"learning_rate": LR, "dropout_rate": DROPOUT}
    values = {"learning_rate": LR.high, "dropout_rate": 0.0 + 1e-9}
    for _ in range(500):
        values = perturb(values, ranges, rng)
        assert LR.low <= values["learning_rate"] <= LR.high
        assert DROPOUT.low <= values["dropout_rate"] <= DROPOUT.high


def test_unbounded_ranges_only_bound_the_initial_draw():
    rng = np.random.default_rng(2)
    value = {"kl": KL.high}
    grew = max(perturb(value, {"kl": KL}, rng)["kl"] for _ in range(50))
    assert grew > KL.high


def test_perturbation_factor_has_the_published_distribution():
    rng = np.random.default_rng(3)
    u = np.array([perturbation_factor(KL, rng) for _ in range(20000)]) - 1
    w = KL.explore_weight
    assert np.abs(u).min() >= MIN_EXPLORE_FRACTION * w and np.abs(u).max() <= w
    assert abs(np.mean(u > 0) - 0.5) < 0.02  # random sign
    # |u| uniform on [0.002 w, w]: its quartiles
    low = MIN_EXPLORE_FRACTION * w
    expected = [low + q * (w - low) for q in (0.25, 0.5, 0.75)]
    assert np.quantile(np.abs(u), [0.25, 0.5, 0.75]) == pytest.approx(expected, abs=0.01)


def test_initial_values_fixed_log_uniform_and_uniform():
    rng = np.random.default_rng(4)
    draws = [initial_values({"learning_rate": LR, "kl": KL, "dropout_rate": DROPOUT}, rng) for _ in range(4000)]
    assert all(d["learning_rate"] == 4e-3 for d in draws)
    kl = np.log10([d["kl"] for d in draws])
    assert kl.min() >= -6 and kl.max() <= -4 and np.median(kl) == pytest.approx(-5, abs=0.05)  # log-uniform
    dropout = np.array([d["dropout_rate"] for d in draws])
    assert dropout.min() >= 0 and dropout.max() <= 0.6 and np.median(dropout) == pytest.approx(0.3, abs=0.02)


def test_stopper_stops_when_four_generations_bring_less_than_the_tolerance():
    stopper = ImprovementStopper(patience=4, tolerance=5e-4)
    improving = [10.0, 9.0, 8.0, 7.5, 7.4, 7.3]
    assert not any(stopper.add_generation([s, s + 1]) for s in improving)
    flat = [7.299, 7.2985, 7.298, 7.2999]  # best 7.298: (7.3 - 7.298) / 7.3 = 2.7e-4 <= 5e-4
    decisions = [stopper.add_generation([s, math.nan]) for s in flat]
    assert decisions == [False, False, False, True]
    assert stopper.improvement() == pytest.approx((7.3 - 7.298) / 7.3)


def test_stopper_waits_for_patience_plus_one_generations_and_caps_generations():
    stopper = ImprovementStopper(patience=4, tolerance=5e-4)
    assert [stopper.add_generation([1.0]) for _ in range(5)] == [False] * 4 + [True]
    capped = ImprovementStopper(patience=4, tolerance=5e-4, max_generations=3)
    assert [capped.add_generation([10.0 - g]) for g in range(3)] == [False, False, True]


def test_stopper_state_survives_a_restore():
    stopper = ImprovementStopper()
    for s in (10.0, 8.0, 8.0, 8.0, 8.0):
        assert not stopper.add_generation([s])
    restored = ImprovementStopper()
    restored.load_state_dict(stopper.state_dict())
    assert restored.add_generation([8.0]) and stopper.add_generation([8.0])
    assert not ImprovementStopper().add_generation([8.0])  # a stopper that forgot would go on


@pytest.mark.parametrize("spec, message", [
    ({"low": 0.5, "high": 0.1}, r"key 'pbt.search.x.high': 0.1 must be above low \(0.5\)"),
    ({"low": 0.0, "high": 1.0, "log": True}, "key 'pbt.search.x.low': 0.0; a log-uniform draw needs low > 0"),
    ({"low": 0.1, "high": 0.5, "init": 0.9}, r"key 'pbt.search.x.init': 0.9 is outside \[0.1, 0.5\]"),
])
def test_a_range_the_schema_cannot_check_is_named(spec, message):
    from latentdyn.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        SearchRange.from_params({"explore_weight": 0.3, **spec}, "pbt.search.x")
    assert SearchRange.from_params({"low": 0.1, "high": 0.5, "explore_weight": 0.3, "init": 0.5}).init == 0.5
