"""Stitching from the workflow: the small multisession config plans every per-session run, a user's list
of session NWB or binned files is planned in its order, a binned list stitches to what its NWB files
do, and bad config or session files stop with one line."""

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from multisession_counts import binned_session
from snakemake.exceptions import WorkflowError
from test_multisession_data import CONFIG as TINY_SESSIONS
from test_workflow import USER_DATASET, readme_config
from workflow_api import REPO, TINY_CONFIG, run_workflow

from latentdyn.data.format import read_binned, read_model_output, write_binned, write_model_output
from latentdyn.data.multisession import make_multisession_dataset
from latentdyn.errors import ConfigError

SMALL = REPO / "config" / "multisession_small.yaml"


def test_small_config_plans_stitched_and_single_session_runs_scored_per_session(tmp_path):
    config = yaml.safe_load(SMALL.read_text())
    n_sessions, n_models = config["multisession_reaching"]["n_sessions"], len(config["multisession_study"]["models"])
    jobs = run_workflow(tmp_path, [SMALL])
    assert jobs["simulate_multisession"] == jobs["stitch_sessions"] == 1 and jobs["bin_nwb"] == n_sessions
    assert jobs["train"] == jobs["predict"] == n_models * (n_sessions + 1)  # the stitched run and each session alone
    assert jobs["unstitch"] == n_models * n_sessions and jobs["evaluate"] == 2 * n_models * n_sessions
    assert jobs["multisession_decoding"] == jobs["figure_multisession_factors"] == n_models
    assert jobs["figure_multisession"] == jobs["figure_multisession_trials"] == jobs["collect_metrics"] == 1


def test_fewer_trials_config_plans_over_the_small_one(tmp_path):
    jobs = run_workflow(tmp_path, [SMALL, REPO / "config" / "multisession_fewer_trials.yaml"])
    assert jobs["simulate_multisession"] == 1 and jobs["multisession_decoding"] == 1
    assert jobs["figure_multisession_trials"] == 1  # experiment 2's figure: rate R² vs each session's trials


BINNING_FIELDS = {key: value for key, value in USER_DATASET.items() if key != "nwb"}


def user_sessions(files, binning=BINNING_FIELDS):
    """Config of the user's multisession dataset `monkey`: these session files, in this order."""
    return {"user_datasets": {"monkey": {**binning, "sessions": [str(path) for path in files]}}}


def test_a_users_session_list_is_binned_or_taken_in_its_order_and_stitched(tmp_path, caplog):
    files = [tmp_path / name for name in ("day0.nwb", "day1.h5", "day2.nwb")]  # NWB and binned may mix
    for path in files:
        path.touch()
    target = "results/runs/monkey_s02_20ms/stitched_small-S/seed0/output.h5"
    study = {"datasets": ["monkey"], "bin_sizes_ms": [20], "models": ["stitched_small"], "seeds": [0]}
    jobs = run_workflow(tmp_path, [SMALL], config={**user_sessions(files), "multisession_study": study}, targets=[target])
    assert "simulate_multisession" not in jobs and jobs["stitch_sessions"] == 1
    assert jobs["bin_nwb"] == 2 and jobs["take_binned_session"] == 1
    commands = [line for line in caplog.text.splitlines() if "bin_nwb.py" in line or " take --binned " in line]
    for day, path in enumerate(files):  # session s is the s-th file of the list
        source = "--nwb" if path.suffix == ".nwb" else "take --binned"
        assert any(f"{source} {path} " in line and f"--dataset monkey_s{day:02d} " in line for line in commands)


def test_readme_binned_sessions_example_takes_each_file_and_bins_nothing(tmp_path):
    config = readme_config("my_binned_sessions.yaml")
    dataset = config["user_datasets"]["my_monkey"]
    dataset["sessions"] = [str(tmp_path / Path(path).name) for path in dataset["sessions"]]
    for path in dataset["sessions"]:
        Path(path).touch()
    jobs = run_workflow(tmp_path, config=config, targets=["results/data/binned/my_monkey_20ms.h5"])
    assert jobs == {"take_binned_session": 3, "stitch_sessions": 1}


def test_a_binned_session_list_stitches_to_the_arrays_its_nwb_sessions_do(tmp_path):
    nwb = [tmp_path / f"day{day}.nwb" for day in range(TINY_SESSIONS.n_sessions)]
    make_multisession_dataset(nwb, [path.with_suffix(".truth.h5") for path in nwb], TINY_SESSIONS)
    stitched = "results/data/binned/monkey_20ms.h5"
    from_nwb = tmp_path / "from_nwb"
    run_workflow(from_nwb, [TINY_CONFIG], config=user_sessions(nwb), targets=[stitched], executor="local")
    binned = [tmp_path / f"day{day}_binned.h5" for day in range(len(nwb))]  # what bin_nwb wrote, as a user has it
    for day, path in enumerate(binned):
        shutil.copy(from_nwb / f"results/data/binned/monkey_s{day:02d}_20ms.h5", path)
    from_binned = tmp_path / "from_binned"
    jobs = run_workflow(from_binned, [TINY_CONFIG], config=user_sessions(binned, binning={}), targets=[stitched],
                        executor="local")  # nothing to bin: no binning fields needed
    assert jobs == {"take_binned_session": len(nwb), "stitch_sessions": 1}
    (expected, expected_attrs), (arrays, attrs) = read_binned(from_nwb / stitched), read_binned(from_binned / stitched)
    assert sorted(arrays) == sorted(expected) and attrs["sessions"] == expected_attrs["sessions"]
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)

    with pytest.raises(WorkflowError):  # binned at 20 ms, stitched at 10
        run_workflow(from_binned, [TINY_CONFIG], config=user_sessions(binned, binning={}),
                     targets=["results/data/binned/monkey_10ms.h5"], executor="local")
    # Every session fails alike; which ones ran before Snakemake stopped depends on the scheduler.
    logs = {day: from_binned / f"results/logs/take_binned_session/monkey_s{day:02d}_10ms.log" for day in range(len(nwb))}
    errors = {day: log.read_text().strip().splitlines()[-1] for day, log in logs.items()
              if log.exists() and log.read_text().strip()}
    assert errors
    for day, error in errors.items():
        assert error.startswith(f"error: {binned[day]}: field 'bin_width_s': 0.02 s, but the sessions are stitched at 10 ms")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"multisession_study": {"datasets": ["nowhere"]}}, "multisession_study.datasets"),
        ({"nlb_multisession": {"maze": ["mc_maze_huge", "mc_maze_small"]}}, "nlb_multisession.maze"),
        ({"models": {"plain": {"kind": "lfads"}}, "multisession_study": {"models": ["plain"]}}, "multisession_study.models"),
        ({"user_datasets": {"monkey": {**BINNING_FIELDS, "sessions": ["day1.mat"]}}}, "user_datasets.monkey.sessions"),
        ({"user_datasets": {"monkey": {"sessions": ["day1.h5", "day2.nwb"]}}},  # an NWB session to bin, no fields
         "key 'user_datasets.monkey': 'align_field' is a required property"),
    ],
)
def test_bad_multisession_config_stops_before_any_job_naming_the_key(tmp_path, override, named):
    with pytest.raises(ConfigError) as error:
        run_workflow(tmp_path, [SMALL], config=override)
    assert named in str(error.value) and len(str(error.value).splitlines()) == 1


def run_stitch(*args):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "stitch_sessions.py"), *map(str, args)],
                          capture_output=True, text=True)
    return done.returncode, done.stderr.strip()


def test_sessions_with_different_windows_stop_stitching_with_one_line_naming_file_and_field(tmp_path):
    paths = [tmp_path / "s0.h5", tmp_path / "s1.h5"]
    write_binned(paths[0], *binned_session(0, 10, bins=20))
    write_binned(paths[1], *binned_session(1, 10, bins=25))
    status, stderr = run_stitch("stitch", "--sessions", *paths, "--name", "pair", "--out", tmp_path / "pair.h5")
    assert status == 2 and len(stderr.splitlines()) == 1
    assert str(paths[1]) in stderr and "train_spikes_heldin" in stderr and not (tmp_path / "pair.h5").exists()


@pytest.mark.parametrize("field", ["bin_width_s", "phase", "eval_spikes_heldin", "train_spikes_heldout", "<file>"])
def test_a_bad_binned_session_stops_with_one_line_naming_file_and_field(tmp_path, field):
    path = tmp_path / "day1.h5"
    write_binned(path, *binned_session(0, 10))
    with h5py.File(path, "r+") as f:
        if field == "bin_width_s":
            f.attrs[field] = 0.01  # binned at 10 ms, stitched at 20
        elif field == "phase":
            del f.attrs[field]
        elif field == "eval_spikes_heldin":
            del f[field]
        elif field == "train_spikes_heldout":
            f[field][:, :, 1] = np.nan  # a unit never observed
    if field == "<file>":
        path.write_bytes(path.read_bytes()[:2000])  # truncated
    status, stderr = run_stitch("take", "--binned", path, "--dataset", "monkey_s01", "--bin-ms", 20,
                                "--out", tmp_path / "monkey_s01_20ms.h5")
    assert status == 2 and len(stderr.splitlines()) == 1 and stderr.startswith(f"error: {path}: field '{field}'")
    assert not (tmp_path / "monkey_s01_20ms.h5").exists()


def test_sessions_cut_around_different_events_stop_stitching(tmp_path):
    paths = [tmp_path / "s0.h5", tmp_path / "s1.h5"]
    for seed, (path, align) in enumerate(zip(paths, ("move_onset_time", "go_cue_time"))):
        arrays, attrs = binned_session(seed, 10)
        write_binned(path, arrays, {**attrs, "spec": {"window": {"align_field": align, "offsets_ms": [-250, 450]}}})
    status, stderr = run_stitch("stitch", "--sessions", *paths, "--name", "pair", "--out", tmp_path / "pair.h5")
    assert status == 2 and stderr.startswith(f"error: {paths[1]}: field 'spec.window'") and "go_cue_time" in stderr


def test_unstitching_writes_each_sessions_output_in_its_own_format(tmp_path):
    sessions = [tmp_path / "s0.h5", tmp_path / "s1.h5"]
    write_binned(sessions[0], *binned_session(0, 10))
    write_binned(sessions[1], *binned_session(1, 7, n_heldin=9))
    assert run_stitch("stitch", "--sessions", *sessions, "--name", "pair", "--out", tmp_path / "pair.h5")[0] == 0
    stitched, _ = read_binned(tmp_path / "pair.h5")
    outputs = {f"{split}_rates_{g}": np.nan_to_num(stitched[f"{split}_true_rates_{g}"]) for split in ("train", "valid", "eval")
               for g in ("heldin", "heldout")}
    write_model_output(tmp_path / "output.h5", outputs, {"model": "m", "seed": 0})
    status, stderr = run_stitch("unstitch", "--stitched", tmp_path / "pair.h5", "--output", tmp_path / "output.h5",
                                "--session", 1, "--session-data", sessions[1], "--model-name", "m-S", "--out", tmp_path / "s1_out.h5")
    assert status == 0, stderr
    own, attrs = read_model_output(tmp_path / "s1_out.h5")
    data, _ = read_binned(sessions[1])
    np.testing.assert_array_equal(own["train_rates_heldin"], data["train_true_rates_heldin"])
    assert attrs["model"] == "m-S" and attrs["session"] == 1 and attrs["dataset"] == "session1"
