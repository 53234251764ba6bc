"""Stitching from the workflow: the small multisession config plans every per-session run, a user's list
of session NWB files is planned in its order, and bad config or session files stop with one line."""

import subprocess
import sys

import numpy as np
import pytest
import yaml
from multisession_counts import binned_session
from test_workflow import USER_DATASET
from workflow_api import REPO, run_workflow

from latentdyn.data.format import read_binned, read_model_output, write_binned, write_model_output
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


def user_multisession(tmp_path, n_sessions=3):
    files = [tmp_path / f"day{day}.nwb" for day in range(n_sessions)]
    for path in files:
        path.touch()
    dataset = {key: value for key, value in USER_DATASET.items() if key != "nwb"}
    return {"user_datasets": {"monkey": {**dataset, "sessions": [str(path) for path in files]}},
            "multisession_study": {"datasets": ["monkey"], "bin_sizes_ms": [20], "models": ["stitched_small"],
                                   "seeds": [0]}}, files


def test_a_users_session_list_is_binned_in_its_order_and_stitched(tmp_path, caplog):
    config, files = user_multisession(tmp_path)
    target = "results/runs/monkey_s02_20ms/stitched_small-S/seed0/output.h5"
    jobs = run_workflow(tmp_path, [SMALL], config=config, targets=[target])
    assert "simulate_multisession" not in jobs and jobs["bin_nwb"] == 3 and jobs["stitch_sessions"] == 1
    commands = [line for line in caplog.text.splitlines() if "bin_nwb.py" in line]
    for day, path in enumerate(files):  # session s is the s-th file of the list
        assert any(f"--nwb {path} " in line and f"--dataset monkey_s{day:02d} " in line for line in commands)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"multisession_study": {"datasets": ["nowhere"]}}, "multisession_study.datasets"),
        ({"nlb_multisession": {"maze": ["mc_maze_huge", "mc_maze_small"]}}, "nlb_multisession.maze"),
        ({"models": {"plain": {"kind": "lfads"}}, "multisession_study": {"models": ["plain"]}}, "multisession_study.models"),
        ({"user_datasets": {"monkey": {**{k: v for k, v in USER_DATASET.items() if k != "nwb"}, "sessions": ["day1.h5"]}}},
         "user_datasets.monkey.sessions"),
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
