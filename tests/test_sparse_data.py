"""Sparse-sampling datasets for SBTT: the demo Lorenz, the chaotic RNN, bandwidth masks and staggered-scan
two-photon imaging, against their recipes; every file through read_binned and the real Snakemake CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from latentdyn.data.chaotic_rnn import make_chaotic_rnn_dataset, rnn_step
from latentdyn.data.conditions import balanced_split
from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.masks import apply_bandwidth, bandwidth_attrs
from latentdyn.data.sbtt_lorenz import make_sbtt_lorenz_dataset
from latentdyn.data.two_photon import make_two_photon_datasets
from latentdyn.errors import InputError
from workflow_api import REPO

SMALL_LORENZ = {"n_conditions": 5, "trials_per_condition": 6, "n_neurons": 8, "n_bins": 20, "n_train": 22}
SMALL_RNN = {"n_neurons": 20, "n_conditions": 6, "trials_per_condition": 5, "n_bins": 30}
SMALL_2P = {"n_conditions": 3, "trials_per_condition": 5, "n_neurons": 12, "n_frames": 8, "subframe_bins": 4,
            "fine_steps_per_bin": 5, "calcium_burn_in_s": 1.0}


@pytest.fixture(scope="module")
def small_lorenz():
    return make_sbtt_lorenz_dataset(**SMALL_LORENZ, seed=2)


@pytest.fixture(scope="module")
def small_rnn():
    return make_chaotic_rnn_dataset(**SMALL_RNN, seed=1)


@pytest.fixture(scope="module")
def small_2p():
    return make_two_photon_datasets(**SMALL_2P, seed=4)


def per_condition_counts(arrays, split, n_conditions, trials_per_condition):
    conditions = arrays[f"{split}_trial_ids"] // trials_per_condition
    return np.bincount(conditions, minlength=n_conditions)


def check_condition_keys(arrays, split, trials_per_condition):
    """cond_idx lists exactly the split's rows of each condition."""
    conditions = arrays[f"{split}_trial_ids"] // trials_per_condition
    for c, rows in enumerate(arrays[f"{split}_cond_idx"]):
        assert np.array_equal(rows, np.flatnonzero(conditions == c))


# --- balanced splits and the SBTT demo Lorenz -------------------------------------------------------

def test_balanced_split_at_the_demo_sizes():
    splits = balanced_split(65, 24, {"train": 1248, "eval": None}, np.random.default_rng(0))
    assert len(splits["train"]) == 1248 and len(splits["eval"]) == 312
    assert sorted(np.concatenate(list(splits.values()))) == list(range(1560))
    for ids, low in ((splits["train"], 19), (splits["eval"], 4)):
        counts = np.bincount(ids // 24, minlength=65)
        assert set(counts) == {low, low + 1}  # 1248 / 65 = 19.2: as even as the sizes allow


def test_balanced_split_three_ways_and_bad_sizes():
    splits = balanced_split(7, 10, {"train": 50, "valid": 9, "eval": None}, np.random.default_rng(1))
    for name, size in (("train", 50), ("valid", 9), ("eval", 11)):
        counts = np.bincount(splits[name] // 10, minlength=7)
        assert counts.sum() == size and counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="do not add up"):
        balanced_split(3, 4, {"train": 10, "eval": 3}, np.random.default_rng(0))


def test_sbtt_lorenz_small_is_balanced_and_repeats_conditions(small_lorenz):
    arrays, attrs = small_lorenz
    n_cond, reps = SMALL_LORENZ["n_conditions"], SMALL_LORENZ["trials_per_condition"]
    assert arrays["train_spikes_heldin"].shape == (22, 20, 8) and arrays["eval_spikes_heldin"].shape == (8, 20, 8)
    assert set(per_condition_counts(arrays, "train", n_cond, reps)) == {4, 5}
    assert set(per_condition_counts(arrays, "eval", n_cond, reps)) == {1, 2}
    for split in ("train", "eval"):
        check_condition_keys(arrays, split, reps)
        for c, rows in enumerate(arrays[f"{split}_cond_idx"]):  # a condition's trials share rates and latents
            assert np.allclose(arrays[f"{split}_true_rates_heldin"][rows], arrays["psth"][c])
            assert np.allclose(arrays[f"{split}_true_latents"][rows], arrays[f"{split}_true_latents"][rows[0]])
    spikes = arrays["train_spikes_heldin"]
    assert np.all(spikes == np.round(spikes)) and spikes.min() >= 0
    assert attrs["bin_width_s"] == 0.02 and attrs["phase"] == "synthetic" and attrs["seed"] == 2


def test_sbtt_lorenz_default_sizes_and_firing_range():
    arrays, attrs = make_sbtt_lorenz_dataset()
    assert arrays["train_spikes_heldin"].shape == (1248, 50, 29)
    assert arrays["eval_spikes_heldin"].shape == (312, 50, 29)
    assert arrays["train_true_latents"].shape == (1248, 50, 3) and len(arrays["train_cond_idx"]) == 65
    assert set(per_condition_counts(arrays, "train", 65, 24)) == {19, 20}
    rates_hz = arrays["psth"] / attrs["bin_width_s"]
    assert 5 <= np.median(rates_hz) <= 20 and np.percentile(rates_hz, 99) < 150  # cortical firing
    assert np.allclose(rates_hz.mean(axis=(0, 1)), attrs["neuron_mean_rates_hz"])


def test_sbtt_lorenz_optional_validation_split_and_seed():
    a, _ = make_sbtt_lorenz_dataset(**{**SMALL_LORENZ, "n_train": 15, "n_valid": 5}, seed=3)
    assert len(a["train_trial_ids"]) == 15 and len(a["valid_trial_ids"]) == 5 and len(a["eval_trial_ids"]) == 10
    assert set(per_condition_counts(a, "valid", 5, 6)) == {1}
    b, _ = make_sbtt_lorenz_dataset(**{**SMALL_LORENZ, "n_train": 15, "n_valid": 5}, seed=3)
    assert np.array_equal(a["train_spikes_heldin"], b["train_spikes_heldin"])


# --- chaotic RNN --------------------------------------------------------------------------------------

def test_chaotic_rnn_follows_the_recurrence(small_rnn):
    arrays, attrs = small_rnn
    x, w = arrays["train_true_latents"], arrays["rnn_weights"]
    assert w.shape == (20, 20) and abs(w.std() * np.sqrt(20) - 1) < 0.15  # W ~ N(0, 1/N)
    t = 7
    expected = (1 - 0.01 / 0.025) * x[:, t] + (0.01 / 0.025) * 1.5 * np.tanh(x[:, t]) @ w.T
    assert np.allclose(x[:, t + 1], expected)
    assert np.allclose(rnn_step(x[:, t], w, 1.5, 0.01, 0.025), expected)
    assert attrs["bin_width_s"] == 0.01


def test_chaotic_rnn_minmax_rates_and_split(small_rnn):
    arrays, _ = small_rnn
    rates = arrays["train_true_rates_heldin"]
    peak = 30.0 * 0.01
    assert rates.min() >= 0 and rates.max() <= peak + 1e-12
    assert np.allclose(rates.min(axis=1), 0) and np.allclose(rates.max(axis=1), peak)  # per trial and neuron
    activity = np.tanh(arrays["train_true_latents"])
    low, high = activity.min(axis=1, keepdims=True), activity.max(axis=1, keepdims=True)
    assert np.allclose(rates, (activity - low) / (high - low) * peak)
    assert set(per_condition_counts(arrays, "train", 6, 5)) == {4}  # 80 % of each condition's trials
    assert set(per_condition_counts(arrays, "eval", 6, 5)) == {1}
    check_condition_keys(arrays, "train", 5)
    assert arrays["train_spikes_heldin"].shape == (24, 30, 20)


# --- bandwidth masks ----------------------------------------------------------------------------------

def test_mask_keeps_exactly_bandwidth_channels_seeded_and_nested(small_lorenz):
    arrays, _ = small_lorenz
    masked = apply_bandwidth(arrays, 3, seed=5)
    for split in ("train", "eval"):
        key = f"{split}_spikes_heldin"
        observed = ~np.isnan(masked[key])
        assert np.all(observed.sum(axis=-1) == 3)
        assert np.array_equal(masked[key][observed], arrays[key][observed])
        assert masked[f"{split}_true_rates_heldin"] is arrays[f"{split}_true_rates_heldin"]
    again, other = apply_bandwidth(arrays, 3, seed=5), apply_bandwidth(arrays, 3, seed=6)
    assert np.array_equal(np.isnan(again["train_spikes_heldin"]), np.isnan(masked["train_spikes_heldin"]))
    assert not np.array_equal(np.isnan(other["train_spikes_heldin"]), np.isnan(masked["train_spikes_heldin"]))
    wider = apply_bandwidth(arrays, 5, seed=5)
    assert np.all(~np.isnan(wider["train_spikes_heldin"])[~np.isnan(masked["train_spikes_heldin"])])
    full = apply_bandwidth(arrays, 8, seed=5)
    assert np.array_equal(full["train_spikes_heldin"], arrays["train_spikes_heldin"])


def test_mask_rejects_bad_bandwidth_and_unobserved_units():
    arrays = {"train_spikes_heldin": np.ones((1, 1, 4)), "eval_spikes_heldin": np.ones((1, 1, 4))}
    with pytest.raises(InputError, match="bandwidth 5 outside 1..4"):
        apply_bandwidth(arrays, 5, seed=0)
    with pytest.raises(InputError, match="never observed"):
        apply_bandwidth(arrays, 1, seed=0)  # one bin cannot observe all four units


def test_mask_attrs_name_the_masked_dataset():
    attrs = bandwidth_attrs({"dataset": "sbtt_lorenz", "bin_width_s": 0.02, "phase": "synthetic"}, 3, 0)
    assert attrs["dataset"] == "sbtt_lorenz_bw3" and attrs["bandwidth"] == 3 and attrs["mask_seed"] == 0


# --- two-photon staggered scanning --------------------------------------------------------------------

def test_two_photon_observes_each_neuron_once_per_frame_at_its_offset(small_2p):
    arrays, attrs = small_2p["subframe"]
    k, n, n_frames = SMALL_2P["subframe_bins"], SMALL_2P["n_neurons"], SMALL_2P["n_frames"]
    frame_s = 1 / 30.0
    assert attrs["bin_width_s"] == pytest.approx(frame_s / k) and attrs["observation"] == "calcium"
    assert np.allclose(arrays["scan_offset_s"], np.arange(n) / n * frame_s)
    assert np.array_equal(arrays["scan_subframe_bin"], np.floor(np.arange(n) * k / n).astype(int))
    observed = ~np.isnan(arrays["train_spikes_heldin"])
    assert observed.shape == (12, n_frames * k, n)
    per_frame = observed.reshape(12, n_frames, k, n)
    assert np.all(per_frame.sum(axis=2) == 1)  # exactly once per frame
    expected = np.zeros((k, n), dtype=bool)
    expected[arrays["scan_subframe_bin"], np.arange(n)] = True
    assert np.all(per_frame == expected[None, None])  # always in its scan bin


def test_two_photon_frame_file_holds_the_same_reads_and_subframe_truth(small_2p):
    sub, sub_attrs = small_2p["subframe"]
    frame, frame_attrs = small_2p["frame"]
    k, n_frames = SMALL_2P["subframe_bins"], SMALL_2P["n_frames"]
    assert frame_attrs["bin_width_s"] == pytest.approx(1 / 30.0) and frame_attrs["resolution"] == "frame"
    for split in ("train", "eval"):
        reads = sub[f"{split}_spikes_heldin"]
        trials, _, n = reads.shape
        assert np.array_equal(np.nansum(reads.reshape(trials, n_frames, k, n), axis=2), frame[f"{split}_spikes_heldin"])
        assert not np.isnan(frame[f"{split}_spikes_heldin"]).any()
        assert np.array_equal(frame[f"{split}_true_rates_subframe"], sub[f"{split}_true_rates_heldin"])
        assert np.array_equal(frame[f"{split}_true_calcium_subframe"], sub[f"{split}_true_calcium_heldin"])
        summed = sub[f"{split}_true_rates_heldin"].reshape(trials, n_frames, k, n).sum(axis=2)
        assert np.allclose(summed, frame[f"{split}_true_rates_heldin"])
        assert np.array_equal(frame[f"{split}_trial_ids"], sub[f"{split}_trial_ids"])
        true_read = sub[f"{split}_true_calcium_heldin"][~np.isnan(reads)]
        assert (reads[~np.isnan(reads)] - true_read).std() == pytest.approx(0.1, rel=0.15)  # imaging noise
    assert set(per_condition_counts(sub, "train", 3, 5)) == {4}


def test_two_photon_calcium_follows_spikes():
    datasets = make_two_photon_datasets(**{**SMALL_2P, "noise_std": 0.0, "n_frames": 30}, seed=1)
    arrays, attrs = datasets["frame"]
    reads, truth = arrays["train_spikes_heldin"], arrays["train_true_calcium_heldin"]
    assert np.allclose(reads, truth, atol=1e-6) and truth.min() >= 0
    # steady state of an AR(1) indicator: mean dF/F = amplitude * tau * mean rate
    rates_hz = arrays["train_true_rates_heldin"].mean() * 30.0
    assert truth.mean() == pytest.approx(0.2 * 0.5 * rates_hz, rel=0.15)
    assert attrs["recommended_reconstruction"] == "gaussian"


# --- files: read_binned and the real Snakemake CLI ----------------------------------------------------

def test_every_generated_file_passes_read_binned(tmp_path, small_lorenz, small_rnn, small_2p):
    files = {
        "sbtt_lorenz": small_lorenz,
        "sbtt_lorenz_bw2": (apply_bandwidth(small_lorenz[0], 2, 0), bandwidth_attrs(small_lorenz[1], 2, 0)),
        "chaotic_rnn": small_rnn,
        "two_photon_subframe": small_2p["subframe"],
        "two_photon_frame": small_2p["frame"],
    }
    for name, (arrays, attrs) in files.items():
        write_binned(tmp_path / f"{name}.h5", arrays, attrs)
        read, read_attrs = read_binned(tmp_path / f"{name}.h5")
        assert read_attrs["dataset"] == name
        assert len(read["train_cond_idx"]) == len(arrays["train_cond_idx"])


def test_rules_run_through_the_snakemake_cli(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({
        "sbtt_lorenz": {"n_conditions": 5, "trials_per_condition": 8, "n_train": 32, "n_bins": 20},
        "chaotic_rnn": {"n_conditions": 6, "n_bins": 40},
        "two_photon": {"n_conditions": 3, "trials_per_condition": 5, "n_frames": 10, "calcium_burn_in_s": 1.0},
    }))
    binned = "results/data/binned"
    targets = [f"{binned}/sbtt_lorenz_bw3.h5", f"{binned}/chaotic_rnn.h5", f"{binned}/two_photon_subframe.h5",
               f"{binned}/two_photon_frame.h5"]
    snakemake = os.path.join(os.path.dirname(sys.executable), "snakemake")
    result = subprocess.run([snakemake, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
                             *targets, "--configfile", str(config)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    masked, attrs = read_binned(tmp_path / binned / "sbtt_lorenz_bw3.h5")
    assert attrs["dataset"] == "sbtt_lorenz_bw3" and masked["train_spikes_heldin"].shape == (32, 20, 29)
    assert np.all((~np.isnan(masked["train_spikes_heldin"])).sum(-1) == 3)
    sub, sub_attrs = read_binned(tmp_path / binned / "two_photon_subframe.h5")
    frame, _ = read_binned(tmp_path / binned / "two_photon_frame.h5")
    assert sub["train_spikes_heldin"].shape == (12, 30, 50) and frame["train_spikes_heldin"].shape == (12, 10, 50)
    assert sub_attrs["observation"] == "calcium"
    rnn, _ = read_binned(tmp_path / binned / "chaotic_rnn.h5")
    assert rnn["train_spikes_heldin"].shape == (48, 40, 50)
    logs = ("simulate_sbtt_lorenz", "simulate_chaotic_rnn", "simulate_two_photon", "mask_bandwidth/sbtt_lorenz_bw3")
    for log in logs:
        assert (tmp_path / "results" / "logs" / f"{log}.log").exists()
