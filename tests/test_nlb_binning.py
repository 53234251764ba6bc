"""NWB -> binned tensors: the NLB reference vector, hand-computed windows, NaN rules, errors, truth."""

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from latentdyn.data.format import read_binned
from scipy import signal

from latentdyn.data.nlb import make_binned_tensors, smoothed_bin_sums
from latentdyn.data.nlb_specs import dataset_spec, user_spec
from latentdyn.errors import InputError
from nlb_reference import REFERENCE_DIR
from nwb_factory import write_nwb

REFERENCE = REFERENCE_DIR / "nlb_vectors"
REPO = Path(__file__).resolve().parents[1]


def simple_spec(**changes):
    config = {"align_field": "move_onset_time", "window_ms": [-100, 200], "bin_ms": [10],
              "behavior_fields": [], "behavior_lag_ms": 0, "condition_fields": [], "psth_sigma_ms": 20,
              "allow_overlap": False}
    return user_spec("toy", {**config, **changes})


def assert_same(expected, ours, name):
    assert expected.shape == ours.shape, name
    assert np.array_equal(np.isnan(expected), np.isnan(ours)), name
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=1e-6, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_matches_nlb_tools_reference_vector(bin_ms):
    nwb = REFERENCE / "maze_simple.nwb"
    arrays, attrs = make_binned_tensors([nwb], dataset_spec("mc_maze"), bin_ms, "val")
    with h5py.File(REFERENCE / "maze_simple_expected.h5", "r") as expected:
        # input/eval_spikes_heldout is the same array as target/eval_spikes_heldout for MC_Maze
        for part in ("input", "target"):
            for name, node in expected[f"bin{bin_ms}/{part}"].items():
                if isinstance(node, h5py.Group):
                    assert len(arrays[name]) == len(node), name
                    for index, trials in enumerate(arrays[name]):
                        assert np.array_equal(trials, node[str(index)][()]), f"{name}/{index}"
                else:
                    assert_same(node[()], arrays[name], name)
    assert attrs["behavior_names"] == ["hand_vel_0000", "hand_vel_0001"]


@pytest.fixture
def maze_like(tmp_path):
    """Four trials 1 s apart; trial 1 is aligned between bins (1803.5 ms)."""
    trials = {"start_time": [0.5, 1.5, 2.5, 3.5], "stop_time": [1.4, 2.4, 3.4, 4.4],
              "move_onset_time": [0.8, 1.8035, 2.8, 3.8], "split": ["train", "train", "val", "test"],
              "trial_type": [0, 1, 0, 1]}
    spikes = [[0.7005, 0.7095, 0.7100, 0.9999, 1.0, 1.705, 1.7100, 2.0035, 2.0100], [0.8001, 0.8009], [2.85]]
    ramp = np.arange(5000.0)
    return write_nwb(tmp_path / "maze.nwb", trials, spikes, heldout=[False, False, True],
                     obs_intervals=[[[0.0, 5.0]]] * 3, behavior={"hand_vel": np.stack([ramp, 2 * ramp], 1)})


def test_hand_computed_windows_counts_and_behaviour(maze_like):
    spec = simple_spec(behavior_fields=["hand_vel"], behavior_lag_ms=50, condition_fields=["trial_type"])
    arrays, attrs = make_binned_tensors([maze_like], spec, 10, "val")
    # trial 0: window [700, 1000) ms = bins 70..99; trial 1: [1703.5, 2003.5) -> first whole bin 171..200
    heldin = np.zeros((2, 30, 2))
    heldin[0, 0, 0], heldin[0, 1, 0], heldin[0, 29, 0], heldin[0, 10, 1] = 2, 1, 1, 2
    heldin[1, 0, 0], heldin[1, 29, 0] = 1, 1
    np.testing.assert_array_equal(arrays["train_spikes_heldin"], heldin)
    forward = np.zeros((2, 20, 2))
    forward[0, 0, 0] = forward[1, 0, 0] = 1  # spikes at 1000 ms and 2010 ms open the forward windows
    np.testing.assert_array_equal(arrays["train_spikes_heldin_forward"], forward)
    heldout = np.zeros((1, 30, 1))
    heldout[0, 15, 0] = 1
    np.testing.assert_array_equal(arrays["eval_spikes_heldout"], heldout)
    np.testing.assert_array_equal(arrays["train_trial_ids"], [0, 1])
    np.testing.assert_array_equal(arrays["eval_trial_ids"], [2])
    # behaviour (a ramp equal to the ms index) lagged 50 ms: FIR decimation keeps a ramp exact
    steps = 10 * np.arange(30)
    np.testing.assert_allclose(arrays["train_behavior"][0, :, 0], 750 + steps, atol=1e-3)
    np.testing.assert_allclose(arrays["train_behavior"][1, :, 1], 2 * (1760 + steps), atol=1e-3)
    assert attrs["behavior_names"] == ["hand_vel_0000", "hand_vel_0001"]
    # PSTH: conditions 0 (trials 0, 2) and 1 (trial 1); the test trial is ignored in the val phase
    assert [list(i) for i in arrays["train_cond_idx"]] == [[0], [1]]
    assert [list(i) for i in arrays["eval_cond_idx"]] == [[0], []]
    psth = arrays["psth"]
    assert psth.shape == (2, 30, 3)
    # a smoothed spike keeps its mass: unit 1's 2 spikes in one of 2 trials, the held-out spike likewise
    np.testing.assert_allclose(psth[0, :, 1].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(psth[0, :, 2].sum(), 0.5, rtol=1e-5)
    assert np.all(psth[1, :, 1:] == 0)


@pytest.mark.parametrize("allow_overlap", [True, False])
def test_overlapping_windows(tmp_path, allow_overlap):
    """RTT-like: 600 ms windows on trials 400 ms apart. Without overlap a window stops where the next
    *selected* trial's window starts (nlb_tools), so a train trial followed by a val trial is whole."""
    starts = [0.0, 0.4, 0.8, 1.2, 1.6, 2.0]
    trials = {"start_time": starts, "stop_time": [s + 0.4 for s in starts],
              "split": ["train", "val", "train", "train", "val", "train"]}
    spikes = [np.arange(0.005, 3.0, 0.01), []]  # two spikes in every 20 ms bin
    path = write_nwb(tmp_path / "rtt.nwb", trials, spikes, heldout=[False, True],
                     obs_intervals=[[[0.0, 3.0]]] * 2)
    spec = simple_spec(align_field="start_time", window_ms=[0, 600], bin_ms=[20], allow_overlap=allow_overlap)
    arrays, _ = make_binned_tensors([path], spec, 20, "val")
    train = arrays["train_spikes_heldin"][:, :, 0]
    expected = np.full((4, 30), 2.0)
    if not allow_overlap:
        expected[1, 20:] = np.nan  # trial 2 runs into trial 3's window (1.2 s) and is cut there
    np.testing.assert_array_equal(train, expected)
    np.testing.assert_array_equal(arrays["eval_spikes_heldin"][:, :, 0], np.full((2, 30), 2.0))


def test_nan_outside_obs_intervals_of_first_unit(tmp_path):
    trials = {"start_time": [1.8, 3.0], "stop_time": [2.9, 4.0], "split": ["train", "val"]}
    gap = [[0.0, 2.005], [2.5, 5.0]]
    spikes = [[2.003, 2.007, 2.6], [2.3], [2.3]]  # 2.007 and unit 1's 2.3 fall in the first unit's gap
    path = write_nwb(tmp_path / "gap.nwb", trials, spikes, heldout=[False, False, True],
                     obs_intervals=[gap, [[0.0, 5.0]], [[0.0, 5.0]]])
    spec = simple_spec(align_field="start_time", window_ms=[0, 1000])
    arrays, _ = make_binned_tensors([path], spec, 10, "val")
    heldin = arrays["train_spikes_heldin"][0]  # bins 180..279; bin j starts at 1800 + 10 j ms
    nan_bins = np.flatnonzero(np.isnan(heldin[:, 0]))
    np.testing.assert_array_equal(nan_bins, np.arange(21, 70))  # bins starting at 2010..2490 ms
    assert np.array_equal(np.isnan(heldin[:, 1]), np.isnan(heldin[:, 0]))  # the whole group follows unit 0
    assert heldin[20, 0] == 1  # bin 2000-2010 starts observed: only the spike at 2003 counts
    assert heldin[80, 0] == 1
    heldout = arrays["train_spikes_heldout"][0, :, 0]
    assert not np.isnan(heldout).any() and heldout[50] == 1  # held-out units have their own intervals


@pytest.mark.parametrize("bin_ms, kernel_len", [(5, 420), (20, 420), (7, 121), (1, 60)])
def test_per_spike_smoothing_equals_nlb_dense_smoothing(bin_ms, kernel_len):
    """nlb_tools smooths the 1 ms spikes of each NaN-free stretch with scipy's 'same' convolution, clips
    at 0 and sums blocks (NaN where a block starts unobserved); the per-spike version must agree."""
    rng = np.random.default_rng(bin_ms)
    n_ms = 3001
    observed = np.ones(n_ms, dtype=bool)
    observed[[0, 1, 7]] = False
    observed[1000:1333] = observed[2990:2995] = False
    spikes = np.flatnonzero(observed & (rng.random(n_ms) < 0.05))
    spikes = np.sort(np.concatenate([spikes, spikes[::5]]))  # some ms hold two spikes
    kernel = signal.windows.gaussian(kernel_len, kernel_len / 6)
    kernel /= kernel.sum()
    dense = np.bincount(spikes, minlength=n_ms).astype(float)
    dense[~observed] = np.nan
    pieces = np.split(dense, np.flatnonzero(np.diff(np.isnan(dense))) + 1)
    smoothed = np.concatenate([p if np.isnan(p[0]) else np.clip(signal.convolve(p, kernel, "same"), 0, None)
                               for p in pieces])
    n_bins = -(-n_ms // bin_ms)
    padded = np.zeros(n_bins * bin_ms)
    padded[:n_ms] = np.nan_to_num(smoothed)
    expected = padded.reshape(n_bins, bin_ms).sum(axis=1)
    expected[np.isnan(smoothed[::bin_ms])] = np.nan
    ours = smoothed_bin_sums(spikes, observed, kernel, bin_ms, n_bins)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14, equal_nan=True)


def test_missing_fields_raise_input_error_naming_them(tmp_path, maze_like):
    with pytest.raises(InputError, match="go_cue_time") as error:
        make_binned_tensors([maze_like], simple_spec(align_field="go_cue_time"), 10, "val")
    assert error.value.path == str(maze_like) and "\n" not in str(error.value)
    with pytest.raises(InputError, match="finger_vel"):
        make_binned_tensors([maze_like], simple_spec(behavior_fields=["finger_vel"]), 10, "val")
    trials = {"start_time": [0.0, 1.0], "stop_time": [0.9, 1.9], "move_onset_time": [0.5, 1.5],
              "split": ["train", "val"]}
    no_heldout = write_nwb(tmp_path / "no_heldout.nwb", trials, [[0.1]], obs_intervals=[[[0.0, 2.0]]])
    with pytest.raises(InputError) as error:
        make_binned_tensors([no_heldout], simple_spec(), 10, "val")
    assert error.value.field == "heldout" and str(no_heldout) in str(error.value)
    with pytest.raises(InputError, match="window_ms"):
        user_spec("toy", {"align_field": "x"})


def test_truth_sidecar(tmp_path, maze_like):
    """Truth rates are expected spikes per bin (mean Hz x bin width); latents are bin means."""
    time_ms = np.arange(5000.0)
    rates = np.stack([10.0 * (u + 1) + time_ms / 100 for u in range(3)], axis=1)
    latents = np.stack([time_ms, -time_ms], axis=1)
    truth = tmp_path / "truth.h5"
    with h5py.File(truth, "w") as f:
        f["timestamps"], f["rates"], f["latents"] = time_ms / 1000, rates, latents
    arrays, _ = make_binned_tensors([maze_like], simple_spec(), 10, "val", truth_path=truth)
    mean_ms = 700 + 10 * np.arange(30) + 4.5  # train trial 0: bins 70..99
    np.testing.assert_allclose(arrays["train_true_rates_heldin"][0], np.stack(
        [(10 + mean_ms / 100) * 0.01, (20 + mean_ms / 100) * 0.01], 1), rtol=1e-6)
    np.testing.assert_allclose(arrays["train_true_rates_heldout"][0, :, 0], (30 + mean_ms / 100) * 0.01,
                               rtol=1e-6)
    np.testing.assert_allclose(arrays["train_true_latents"][0, :, 1], -mean_ms, rtol=1e-6)
    assert arrays["eval_true_rates_heldin"].shape == (1, 30, 2)


def test_test_phase_with_train_and_test_files(tmp_path):
    """NLB ships a train file and a heldin-only test file; 'test' trains on train+val, evaluates on test."""
    train_file = write_nwb(tmp_path / "sub_desc-train.nwb",
                           {"start_time": [0.0, 1.0], "stop_time": [0.9, 1.9], "move_onset_time": [0.5, 1.5],
                            "split": ["train", "val"]},
                           [[0.45], [0.45]], heldout=[False, True], obs_intervals=[[[0.0, 2.0]]] * 2)
    test_file = write_nwb(tmp_path / "sub_desc-test.nwb",
                          {"start_time": [0.0], "stop_time": [0.9], "move_onset_time": [0.5],
                           "split": ["test"]},
                          [[0.55]], heldout=[False], obs_intervals=[[[0.0, 1.0]]])
    arrays, attrs = make_binned_tensors([train_file, test_file], simple_spec(), 10, "test")
    # files lie on the timeline in name order (test first), as nlb_tools globs a directory
    np.testing.assert_array_equal(arrays["eval_trial_ids"], [0])
    np.testing.assert_array_equal(arrays["train_trial_ids"], [1, 2])
    assert arrays["eval_spikes_heldin"][0, 15, 0] == 1 and np.nansum(arrays["eval_spikes_heldin"]) == 1
    assert arrays["train_spikes_heldin"][:, 5, 0].tolist() == [1, 0]
    assert arrays["train_spikes_heldout"][:, 5, 0].tolist() == [1, 0]
    assert "eval_spikes_heldout" not in arrays and "psth" not in arrays
    assert attrs["source"].startswith(str(test_file))


def test_dmfc_jitter_and_front_padded_target(tmp_path):
    """DMFC: inputs end at go + jitter; the held-out target is set..go, front-padded, ending jitter bins
    before the row's end, so both place a spike just before go at the same bin."""
    starts = np.array([0.0, 3.0, 6.0, 9.0])
    go = starts + 1.8
    trials = {"start_time": starts, "stop_time": starts + 2.9, "set_time": starts + 1.0, "go_time": go,
              "split": ["train", "train", "val", "val"], "is_eye": [True, False, True, False],
              "theta": [0.0, 180.0, 0.0, 180.0], "is_short": [True, True, True, True],
              "ts": [800.0, 800.0, 800.0, 800.0], "tp": [800.0, 800.0, 800.0, 800.0],
              "is_outlier": [0, 1, 0, 0]}
    spikes = [go - 0.01, go - 0.01]
    path = write_nwb(tmp_path / "dmfc.nwb", trials, spikes, heldout=[False, True],
                     obs_intervals=[[[0.0, 12.0]]] * 2)
    arrays, _ = make_binned_tensors([path], dataset_spec("dmfc_rsg"), 20, "val")
    # jitter range: clip(1500 - tp, 0, 300) ms = 15 bins of 20 ms; one seeded draw per val trial
    jitter_bins = np.round(np.random.RandomState(0).random_sample(2) * 15).astype(int)
    heldout = arrays["eval_spikes_heldout"][:, :, 0]
    heldin = arrays["eval_spikes_heldin"][:, :, 0]
    assert heldout.shape == heldin.shape == (2, 75)
    for trial, shift in enumerate(jitter_bins):
        observed = np.flatnonzero(~np.isnan(heldout[trial]))
        np.testing.assert_array_equal(observed, np.arange(75 - shift - 40, 75 - shift))  # 800 ms set..go
        assert heldout[trial, 74 - shift] == 1 and heldin[trial, 74 - shift] == 1
    behavior = arrays["train_behavior"]
    assert behavior.shape == (2, 5) and np.isnan(behavior[1]).all()  # trial 1 is an outlier
    np.testing.assert_array_equal(behavior[0], [1, 0, 1, 800, 800])
    assert arrays["psth"].shape == (2, 75, 2) and np.isnan(arrays["psth"][:, :35]).all()


def test_cli_writes_binned_file_and_reports_bad_input(tmp_path, capsys, monkeypatch, maze_like):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))  # for the script's _bootstrap import
    spec = importlib.util.spec_from_file_location("bin_nwb", REPO / "scripts" / "bin_nwb.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / "binned.h5"
    cli.main(["--nwb", str(REFERENCE / "maze_simple.nwb"), "--dataset", "mc_maze", "--bin-ms", "20",
              "--phase", "val", "--out", str(out)])
    arrays, attrs = read_binned(out)
    assert arrays["train_spikes_heldin"].shape == (30, 35, 14) and len(arrays["eval_cond_idx"]) == 8
    assert attrs["dataset"] == "mc_maze" and attrs["bin_width_s"] == 0.02 and attrs["phase"] == "val"
    bad = '{"align_field": "nope", "window_ms": [0, 100], "bin_ms": [10], "behavior_fields": [], ' \
          '"behavior_lag_ms": 0, "condition_fields": [], "psth_sigma_ms": 20, "allow_overlap": false}'
    with pytest.raises(SystemExit) as exit_status:
        cli.main(["--nwb", str(maze_like), "--dataset", "mine", "--bin-ms", "10", "--phase", "val",
                  "--out", str(tmp_path / "bad.h5"), "--spec-json", bad])
    assert exit_status.value.code == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1 and "'nope'" in error_lines[0] and not (tmp_path / "bad.h5").exists()
