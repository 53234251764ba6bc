"""NLB metrics: known answers, and nlb_tools' own numbers on the reference vector."""

import math

import h5py
import numpy as np
import pytest

from latentdyn.errors import InputError
from latentdyn.metrics.nlb import (
    bits_per_spike,
    evaluate_submission,
    forward_bits_per_spike,
    load_test_targets,
    poisson_nll,
    psth_r2,
    tp_correlation,
    velocity_r2,
)
from nlb_reference import load_reference_vector


def poisson_data(seed=0, shape=(20, 30, 6)):
    rng = np.random.default_rng(seed)
    rates = np.exp(rng.normal(-0.5, 0.8, size=shape))
    return rates, rng.poisson(rates).astype(float)


def test_poisson_nll_matches_hand_computation():
    rates = np.array([[[1.0, 2.0]]])
    spikes = np.array([[[0.0, 3.0]]])
    # (1 - 0·log 1 + log 0!) + (2 - 3·log 2 + log 3!)
    assert poisson_nll(rates, spikes) == pytest.approx(1.0 + 2.0 - 3.0 * math.log(2.0) + math.log(6.0), rel=1e-12)


def test_zero_rate_is_floored_not_infinite():
    assert poisson_nll(np.array([0.0]), np.array([1.0])) == pytest.approx(1e-9 - math.log(1e-9), rel=1e-12)


def test_nan_spikes_are_skipped_and_their_rates_unchecked():
    rates, spikes = poisson_data()
    spikes_with_gaps = spikes.copy()
    spikes_with_gaps[:, -5:, :] = np.nan
    rates_with_gaps = rates.copy()
    rates_with_gaps[:, -5:, :] = np.nan
    assert poisson_nll(rates_with_gaps, spikes_with_gaps) == pytest.approx(
        poisson_nll(rates[:, :-5], spikes[:, :-5]), rel=1e-12
    )
    assert bits_per_spike(rates_with_gaps, spikes_with_gaps) == pytest.approx(
        bits_per_spike(rates[:, :-5], spikes[:, :-5]), rel=1e-12
    )


def test_true_rates_beat_the_null():
    rates, spikes = poisson_data()
    assert bits_per_spike(rates, spikes) > 0.1


def test_per_neuron_mean_rates_score_exactly_zero():
    _, spikes = poisson_data()
    spikes[0, :3, 0] = np.nan
    neuron_means = np.broadcast_to(np.nanmean(spikes, axis=(0, 1)), spikes.shape)
    assert bits_per_spike(neuron_means, spikes) == 0.0


@pytest.mark.parametrize("bad_rate", [-0.1, np.nan, np.inf])
def test_invalid_rates_raise(bad_rate):
    rates, spikes = poisson_data()
    rates[3, 4, 5] = bad_rate
    with pytest.raises(ValueError):
        bits_per_spike(rates, spikes)


def test_forward_bps_pools_heldin_and_heldout_units():
    rates, spikes = poisson_data()
    pooled = forward_bits_per_spike(rates[..., :4], spikes[..., :4], rates[..., 4:], spikes[..., 4:])
    assert pooled == pytest.approx(bits_per_spike(rates, spikes), rel=1e-12)


def linear_behaviour(rates, weights):
    return rates @ weights + 0.3


def test_velocity_r2_is_one_for_exactly_linear_behaviour():
    rng = np.random.default_rng(1)
    train_rates, eval_rates = rng.random((30, 10, 8)), rng.random((10, 10, 8))
    weights = rng.normal(size=(8, 2))
    train_behaviour = linear_behaviour(train_rates, weights)
    train_behaviour[:, :2] = np.nan  # unmeasured bins are dropped, not scored
    r2 = velocity_r2(train_rates, train_behaviour, eval_rates, linear_behaviour(eval_rates, weights))
    assert r2 == pytest.approx(1.0, abs=1e-4)


def test_velocity_r2_fits_one_decoder_per_mask():
    rng = np.random.default_rng(2)
    train_rates, eval_rates = rng.random((40, 10, 8)), rng.random((20, 10, 8))
    weights = rng.normal(size=(2, 8, 2))
    train_group, eval_group = np.arange(40) % 2, np.arange(20) % 2

    def behaviour(rates, group):
        return np.stack([linear_behaviour(trial, weights[g]) for trial, g in zip(rates, group)])

    trial_masks = (np.stack([train_group == 0, train_group == 1], 1), np.stack([eval_group == 0, eval_group == 1], 1))
    bin_masks = tuple(np.repeat(mask[:, None, :], 10, axis=1) for mask in trial_masks)
    args = (train_rates, behaviour(train_rates, train_group), eval_rates, behaviour(eval_rates, eval_group))
    per_trial = velocity_r2(*args, decode_masks=trial_masks)
    assert per_trial == pytest.approx(1.0, abs=1e-4)
    assert velocity_r2(*args, decode_masks=bin_masks) == per_trial
    assert velocity_r2(*args) < 0.99


def test_psth_r2_is_one_when_rates_equal_the_psth():
    rng = np.random.default_rng(3)
    psth = rng.random((3, 20, 5))
    eval_cond_idx = [np.array([0, 3]), np.array([], dtype=np.int64), np.array([1, 2, 4])]
    eval_rates = np.empty((5, 20, 5))
    for condition, trials in enumerate(eval_cond_idx):
        eval_rates[trials] = psth[condition]
    assert psth_r2(eval_rates, psth, eval_cond_idx) == pytest.approx(1.0, abs=1e-12)


def test_psth_r2_undoes_eval_jitter():
    rng = np.random.default_rng(4)
    psth = rng.random((1, 20, 5))
    jitter = np.array([0, 2, 3])
    psth[0, : jitter.max()] = np.nan  # bins a jittered trial cannot cover are not scored
    eval_rates = np.stack([np.roll(np.nan_to_num(psth[0]), -shift, axis=0) for shift in jitter])
    assert psth_r2(eval_rates, psth, [np.arange(3)], jitter) == pytest.approx(1.0, abs=1e-12)


def test_tp_correlation_is_one_when_speed_tracks_tp():
    n_trials, n_bins = 12, 30
    slopes = np.linspace(0.5, 2.0, n_trials)
    direction = np.ones(4) / 2.0  # unit vector: speed equals slope
    eval_rates = slopes[:, None, None] * np.arange(n_bins)[None, :, None] * direction
    set_go_mask = np.zeros((n_trials, n_bins), bool)
    set_go_mask[:, 10:] = True
    conditions = np.column_stack([np.arange(n_trials) % 2, np.zeros(n_trials), np.zeros(n_trials)]).astype(float)
    conditions[0] = np.nan  # outlier trial, in no condition
    tp = 3.0 * slopes + conditions[:, 0]
    assert tp_correlation(eval_rates, set_go_mask, conditions, tp) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("bin_group", ["bin5", "bin20"])
def test_reference_vector_metrics_match_nlb_tools(bin_group):
    targets, submission, expected = load_reference_vector(bin_group)
    metrics = evaluate_submission(targets, submission, "mc_maze")
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_dmfc_scores_tp_corr_instead_of_velocity():
    rates, spikes = poisson_data(shape=(8, 30, 6))
    spikes[:, :10] = np.nan  # outside set–go
    behaviour = np.column_stack([np.arange(8) % 2, np.zeros(8), np.zeros(8), np.ones(8), np.arange(8.0)])
    targets = {
        "eval_spikes_heldin": spikes[..., :4],
        "eval_spikes_heldout": spikes[..., 4:],
        "eval_behavior": behaviour,
    }
    targets["train_behavior"] = behaviour
    submission = {"eval_rates_heldin": rates[..., :4], "eval_rates_heldout": rates[..., 4:]}
    assert set(evaluate_submission(targets, submission, "dmfc_rsg_20")) == {"co-bps", "tp corr"}


def test_missing_or_misshaped_submission_keys_raise_input_error():
    targets, submission, _ = load_reference_vector("bin20")
    with pytest.raises(InputError, match="eval_rates_heldout_forward"):
        evaluate_submission(
            targets, {k: v for k, v in submission.items() if k != "eval_rates_heldout_forward"}, "mc_maze"
        )
    with pytest.raises(InputError, match="train_rates_heldin.*shape"):
        evaluate_submission(
            targets, {**submission, "train_rates_heldin": submission["train_rates_heldin"][:-1]}, "mc_maze"
        )
    with pytest.raises(InputError, match="eval_rates_heldout.*non-negative"):
        evaluate_submission(targets, {**submission, "eval_rates_heldout": -submission["eval_rates_heldout"]}, "mc_maze")


def write_nlb_test_file(path):
    """An eval_data_test.h5 laid out as nlb_tools' save_to_h5 writes it (float32, vlen condition indices)."""
    with h5py.File(path, "w") as f:
        for bin_group, group_name in (("bin5", "mc_maze"), ("bin20", "mc_maze_20")):
            targets, _, _ = load_reference_vector(bin_group)
            group = f.create_group(group_name)
            for key in (
                "eval_spikes_heldout",
                "train_behavior",
                "eval_behavior",
                "eval_spikes_heldin_forward",
                "eval_spikes_heldout_forward",
                "psth",
            ):
                group.create_dataset(key, data=targets[key], dtype="float32")
            for key in ("train_cond_idx", "eval_cond_idx"):
                group.create_dataset(key, data=np.array(targets[key], dtype=object), dtype=h5py.vlen_dtype("int32"))


@pytest.mark.parametrize("bin_group, bin_ms", [("bin5", 5), ("bin20", 20)])
def test_test_targets_file_scores_like_the_binned_targets(tmp_path, bin_group, bin_ms):
    path = tmp_path / "eval_data_test.h5"
    write_nlb_test_file(path)
    _, submission, expected = load_reference_vector(bin_group)
    targets = load_test_targets(path, "mc_maze", bin_ms)
    assert [len(trials) for trials in targets["eval_cond_idx"]] == [1, 2, 0, 3, 0, 2, 2, 0]
    metrics = evaluate_submission(targets, submission, "mc_maze")
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-4), name  # targets stored as float32


def test_test_targets_errors_name_the_problem(tmp_path):
    path = tmp_path / "eval_data_test.h5"
    write_nlb_test_file(path)
    with pytest.raises(InputError, match="area2_bump"):
        load_test_targets(path, "area2_bump", 5)
    with pytest.raises(InputError, match="bin_ms"):
        load_test_targets(path, "mc_maze", 10)
    pointer = tmp_path / "pointer.h5"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(InputError, match="Git LFS"):
        load_test_targets(pointer, "mc_maze", 5)
