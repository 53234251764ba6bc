"""A trained model survives any failure after training, and malformed data is refused in one line before
any training (issue: "A trained model is never thrown away")."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.nlb import make_binned_tensors
from latentdyn.errors import InputError
from latentdyn.models.kinds import resolve_model
from latentdyn.models import pipeline
from nwb_factory import write_nwb
from workflow_api import PAPER_CONFIG, REPO, TINY_CONFIG, run_workflow

TINY_GRU = {"kind": "sequential_autoencoder", "dynamics": "gru", "latent_size": 2, "encoder_size": 4,
            "learning_rate": 1e-2, "epochs": 3, "batch_size": 8, "log_every": 1}


def binned_file(path, n_train=16, n_eval=8, n_bins=6, heldin=5, heldout=2, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_spikes_heldin": rng.poisson(1.0, (n_train, n_bins, heldin)).astype(np.float32),
        "train_spikes_heldout": rng.poisson(1.0, (n_train, n_bins, heldout)).astype(np.float32),
        "eval_spikes_heldin": rng.poisson(1.0, (n_eval, n_bins, heldin)).astype(np.float32),
        "eval_spikes_heldout": rng.poisson(1.0, (n_eval, n_bins, heldout)).astype(np.float32),
    }
    write_binned(path, arrays, {"dataset": "toy", "bin_width_s": 0.02, "phase": "val"})
    return path


def replace_array(path, key, value):
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, data=value)
    return path


def run_model(step, data, params, run_dir, *extra):
    """scripts/run_model.py <step>; returns (exit status, stdout, stderr lines)."""
    out = run_dir / ("model.pt" if step == "train" else "output.h5")
    trained = ["--trained", run_dir / "model.pt"] if step == "predict" else []
    command = [sys.executable, REPO / "scripts" / "run_model.py", step, "--data", data, "--model-name", "m",
               "--model", json.dumps(params), "--seed", "0", "--device", "cpu", "--out", out, *trained, *extra]
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr.strip().splitlines()


# 1. training and prediction are separate: a failed prediction keeps the trained model


def test_a_failing_prediction_keeps_the_model_and_predicting_again_does_not_train(tmp_path, monkeypatch):
    data, attrs = read_binned(binned_file(tmp_path / "d.h5"))
    params = resolve_model("m", TINY_GRU)
    model_path = pipeline.train(params, data, attrs, run_dir=tmp_path, seed=0, device="cpu")
    written = model_path.stat().st_mtime_ns
    implementation = pipeline.get_kind("sequential_autoencoder").implementation()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(implementation, "predict", disk_full)
        with pytest.raises(OSError):
            pipeline.predict(params, data, attrs, model_path=model_path, seed=0, device="cpu")
    assert model_path.stat().st_mtime_ns == written
    import latentdyn.training.trainer as trainer

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "fit", lambda *a, **k: pytest.fail("predict must not train"))
        first, attrs_out = pipeline.predict(params, data, attrs, model_path=model_path, seed=0, device="cpu")
    again, _ = pipeline.predict(params, data, attrs, model_path=model_path, seed=0, device="cpu")
    assert attrs_out["checkpoint"].startswith(("best (epoch", "last (epoch"))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_predicting_from_a_model_of_other_data_is_refused(tmp_path):
    data, attrs = read_binned(binned_file(tmp_path / "d.h5"))
    other, _ = read_binned(binned_file(tmp_path / "other.h5", seed=1))
    params = resolve_model("m", TINY_GRU)
    model_path = pipeline.train(params, data, attrs, run_dir=tmp_path, seed=0, device="cpu")
    with pytest.raises(InputError, match="another model or data") as error:
        pipeline.predict(params, other, attrs, model_path=model_path, seed=0, device="cpu")
    assert error.value.path == str(model_path)


def tiny_lfads_workflow(workdir):
    """A workflow whose only run is a tiny LFADS on the simulated reaching data, predicting with many
    posterior samples (slow enough to be killed during prediction)."""
    override = {
        "models": {"lfads_tiny": {"kind": "lfads", "ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 1,
                                  "ic_dim": 4, "gen_dim": 8, "fac_dim": 3, "epochs": 4, "batch_size": 16,
                                  "log_every": 1, "posterior_samples": 20000}},
        "attractor_study": None,
        "nlb_study": {"datasets": ["reaching"], "bin_sizes_ms": [20], "models": ["lfads_tiny"], "seeds": [0]},
    }
    path = workdir / "override.json"
    path.write_text(json.dumps(override))
    return path


def snakemake(workdir, configs, target):
    command = [sys.executable, "-m", "snakemake", "--snakefile", REPO / "Snakefile", "--directory", workdir,
               "--cores", "1", "--configfile", PAPER_CONFIG, TINY_CONFIG, *configs, "--", target]
    return list(map(str, command))


def test_a_killed_prediction_reruns_alone_and_never_retrains(tmp_path):
    override = tiny_lfads_workflow(tmp_path)
    run = tmp_path / "results/runs/reaching_20ms/lfads_tiny/seed0"
    target = "results/runs/reaching_20ms/lfads_tiny/seed0/output.h5"
    predict_log = tmp_path / "results/logs/predict/reaching_20ms/lfads_tiny/seed0.log"
    train_log = tmp_path / "results/logs/train/reaching_20ms/lfads_tiny/seed0.log"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    driver = subprocess.Popen(snakemake(tmp_path, [override], target), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (predict_log.exists() and "predict lfads_tiny" in predict_log.read_text()):
        assert driver.poll() is None and time.monotonic() < deadline, "prediction never started"
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its job, as a lost node or a time limit would
    driver.wait()
    assert (run / "model.pt").exists() and not (run / "output.h5").exists()
    trained = (run / "model.pt").stat().st_mtime_ns
    assert "epoch 4/4" in train_log.read_text()

    for recovery in (["--unlock"], ["--rerun-incomplete"]):  # the README's recovery after a killed driver
        rerun = subprocess.run(snakemake(tmp_path, [override], target)[:-2] + recovery + ["--", target], env=env,
                               capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (run / "output.h5").exists() and (run / "model.pt").stat().st_mtime_ns == trained
    assert "epoch" not in predict_log.read_text() and "rule train" not in rerun.stderr

    fewer_samples = json.loads(override.read_text())
    fewer_samples["models"]["lfads_tiny"]["posterior_samples"] = 3
    override.write_text(json.dumps(fewer_samples))
    assert run_workflow(tmp_path, [TINY_CONFIG, override], targets=[target]) == {"predict": 1}
    fewer_samples["models"]["lfads_tiny"]["epochs"] = 5
    override.write_text(json.dumps(fewer_samples))
    assert run_workflow(tmp_path, [TINY_CONFIG, override], targets=[target]) == {"train": 1, "predict": 1}


# 2. malformed binned arrays: one line naming the file and the key, before any training


@pytest.mark.parametrize("key, value, problem", [
    ("train_spikes_heldin", np.ones((16, 6)), "rank 2 (shape (16, 6)); expected 3: (trials, bins, units)"),
    ("train_spikes_heldin", np.full((16, 6, 5), b"1"), "dtype |S1 is not numeric"),
    ("eval_spikes_heldin", np.ones((8, 6, 4)), "4 units, but train_spikes_heldin has 5"),
    ("eval_spikes_heldout", np.ones((7, 6, 2)), "7 trials, but eval_spikes_heldin has 8"),
    ("train_spikes_heldout", np.ones((16, 5, 2)), "5 bins, but train_spikes_heldin has 6"),
])
def test_a_malformed_array_is_refused_before_the_first_epoch(tmp_path, key, value, problem):
    data = replace_array(binned_file(tmp_path / "d.h5"), key, value)
    status, stdout, stderr = run_model("train", data, resolve_model("m", TINY_GRU), tmp_path)
    assert status == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: {data}: field '{key}': {problem}")
    assert "epoch" not in stdout and not (tmp_path / "model.pt").exists()


# 3. negative spike counts: refused by count likelihoods, accepted by the calcium Gaussian


@pytest.mark.parametrize("value, problem", [(-1.0, "negative spike counts"), (0.5, "non-integer spike counts")])
@pytest.mark.parametrize("params", [
    TINY_GRU,
    {"kind": "lfads", "fac_dim": 3, "gen_dim": 4, "ic_dim": 4, "ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4,
     "epochs": 2},
], ids=["sae", "lfads_poisson"])
def test_count_likelihoods_refuse_counts_that_are_not_counts(tmp_path, params, value, problem):
    data = binned_file(tmp_path / "d.h5")
    with h5py.File(data, "r+") as f:
        f["train_spikes_heldin"][:, :, 1] = value
    status, stdout, stderr = run_model("train", data, resolve_model("m", params), tmp_path)
    assert status == 2 and len(stderr) == 1, stderr
    assert stderr[0].startswith(f"error: {data}: field 'train_spikes_heldin': {problem}")
    assert "epoch" not in stdout and not (tmp_path / "model.pt").exists()


def test_the_calcium_gaussian_accepts_negative_values(tmp_path):
    data = binned_file(tmp_path / "d.h5")
    with h5py.File(data, "r+") as f:
        f["train_spikes_heldin"][:, :, 1] = -0.25  # ΔF/F dips below baseline
    params = resolve_model("m", {"kind": "lfads", "reconstruction": "gaussian", "fac_dim": 3, "gen_dim": 4,
                                 "ic_dim": 4, "ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "epochs": 2,
                                 "posterior_samples": 0})
    status, stdout, stderr = run_model("train", data, params, tmp_path)
    assert status == 0, stderr
    status, _, stderr = run_model("predict", data, params, tmp_path)
    assert status == 0 and (tmp_path / "output.h5").exists(), stderr


# 4. an alignment field that is NaN in every trial


def user_spec_config(**changes):
    return {"align_field": "move_onset_time", "window_ms": [-200, 400], "bin_ms": [20], "behavior_fields": [],
            "behavior_lag_ms": 0, "condition_fields": [], "psth_sigma_ms": 20, "allow_overlap": False, **changes}


def nan_aligned_nwb(path):
    trials = {"start_time": [0.0, 1.0, 2.0, 3.0], "stop_time": [0.9, 1.9, 2.9, 3.9],
              "move_onset_time": [np.nan] * 4, "split": ["train", "train", "val", "val"], "trial_type": [0, 1, 0, 1]}
    spikes = [random_counts_times(seed) for seed in range(3)]
    return write_nwb(path, trials, spikes, heldout=[False, False, True], obs_intervals=[[[0.0, 4.0]]] * 3)


def random_counts_times(seed):
    return np.sort(np.random.default_rng(seed).uniform(0, 4, 40))


@pytest.mark.parametrize("condition_fields", [["trial_type"], []])
def test_an_alignment_field_nan_in_every_trial_is_named_and_nothing_is_written(tmp_path, condition_fields):
    nwb = nan_aligned_nwb(tmp_path / "my session.nwb")
    spec = user_spec_config(condition_fields=condition_fields)
    out = tmp_path / "binned.h5"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bin_nwb.py"), "--nwb", str(nwb), "--dataset", "my",
                           "--bin-ms", "20", "--phase", "val", "--out", str(out), "--spec-json", json.dumps(spec)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {nwb}: field 'move_onset_time': NaN (or not a time) in every trial; needed to align the"
        " model-input windows"]
    assert not out.exists()


def test_a_split_left_without_trials_is_named_by_its_alignment_field(tmp_path):
    from latentdyn.data.nlb_specs import user_spec

    trials = {"start_time": [0.0, 1.0, 2.0, 3.0], "stop_time": [0.9, 1.9, 2.9, 3.9],
              "move_onset_time": [0.5, 1.5, np.nan, np.nan], "split": ["train", "train", "val", "val"]}
    nwb = write_nwb(tmp_path / "s.nwb", trials, [random_counts_times(0)], heldout=[False],
                    obs_intervals=[[[0.0, 4.0]]])
    spec = user_spec("my", user_spec_config())
    with pytest.raises(InputError, match="no eval trial has a model-input window with data") as error:
        make_binned_tensors([nwb], spec, 20, "val")
    assert error.value.field == "move_onset_time" and error.value.path == str(nwb)


# cosmetic: a checkpoint of an older layout says so


def test_a_checkpoint_of_an_older_format_says_so(tmp_path):
    import torch

    from latentdyn.training.checkpoints import load_checkpoint

    old = tmp_path / "model.pt"
    torch.save({"model": {}, "epoch": 3}, old)  # before run identities were recorded
    with pytest.raises(InputError, match="checkpoint from an older format"):
        load_checkpoint(old, "abc", "cpu", required=True)
