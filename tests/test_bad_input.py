"""Bad input files and model outputs stop with one line naming the file and the key (exit 2), and
nothing is scored or written from them."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from latentdyn.data.attractors import make_attractor_dataset
from latentdyn.data.format import (read_binned, read_model_output, validate_model_output, write_binned,
                                   write_model_output)
from latentdyn.data.nwb_reader import read_recording
from latentdyn.cli import main_guard
from latentdyn.errors import ConfigError, InputError
from latentdyn.io import reading
from latentdyn.metrics.nlb import evaluate_submission, load_test_targets
from nlb_reference import REFERENCE_DIR, load_reference_vector
from workflow_api import REPO

REFERENCE_NWB = REFERENCE_DIR / "nlb_vectors" / "maze_simple.nwb"
SHAPES = {"train": (4, 5), "eval": (2, 5)}  # trials, bins
UNITS = {"heldin": 3, "heldout": 2}


def toy_arrays():
    rng = np.random.default_rng(0)
    arrays = {
        f"{split}_spikes_{group}": rng.poisson(1.0, (*SHAPES[split], n)).astype(float)
        for split in SHAPES
        for group, n in UNITS.items()
    }
    arrays["eval_spikes_heldin_forward"] = rng.poisson(1.0, (2, 3, 3)).astype(float)
    return arrays


def toy_output():
    rates = {k.replace("_spikes_", "_rates_"): np.full(v.shape, 0.5) for k, v in toy_arrays().items()}
    return {**rates, "eval_latents": np.zeros((2, 5, 4)), "latents/train_states": np.zeros((4, 5, 2)),
            "latents/train_ic_mean": np.zeros((4, 2))}


def write_toy(path, arrays):
    write_binned(path, arrays, {"dataset": "toy", "bin_width_s": 0.02, "phase": "val"})
    return path


def run_script(name, *args):
    """Run scripts/<name>; returns (exit status, stderr lines)."""
    done = subprocess.run([sys.executable, REPO / "scripts" / name, *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stderr.strip().splitlines()


# 2. nothing observed


@pytest.mark.parametrize("key", ["train_spikes_heldin", "eval_spikes_heldout", "eval_spikes_heldin_forward"])
def test_a_split_with_nothing_observed_is_rejected(tmp_path, key):
    arrays = toy_arrays()
    arrays[key][:] = np.nan
    path = write_toy(tmp_path / "d.h5", arrays)
    with pytest.raises(InputError, match="nothing observed") as error:
        read_binned(path)
    assert error.value.field == key and error.value.path == str(path)


@pytest.mark.parametrize("key", ["train_spikes_heldin", "train_spikes_heldout"])
def test_a_unit_never_observed_in_training_is_rejected(tmp_path, key):
    arrays = toy_arrays()
    arrays[key][:, :, 1] = np.nan
    with pytest.raises(InputError, match=r"unit column\(s\) \[1\] never observed") as error:
        read_binned(write_toy(tmp_path / "d.h5", arrays))
    assert error.value.field == key


def test_partly_unobserved_data_and_absent_targets_are_fine(tmp_path):
    arrays = toy_arrays()
    arrays["train_spikes_heldin"][:, 2:] = np.nan  # bins outside the observation intervals
    arrays["eval_spikes_heldin"][:, :, 0] = np.nan  # evaluation units may be unobserved
    del arrays["eval_spikes_heldout"]  # the NLB test phase hides the targets
    data, _ = read_binned(write_toy(tmp_path / "d.h5", arrays))
    assert set(data) == set(arrays)


def test_training_on_all_nan_data_stops_with_one_line(tmp_path):
    arrays = toy_arrays()
    arrays["train_spikes_heldin"][:] = np.nan
    data = write_toy(tmp_path / "d.h5", arrays)
    out = tmp_path / "metrics.json"
    status, stderr = run_script("evaluate.py", "--data", data, "--output", tmp_path / "o.h5", "--out", out)
    assert status == 2 and stderr == [f"error: {data}: field 'train_spikes_heldin': nothing observed: the array is "
                                      "empty or every entry is NaN"]
    assert not out.exists()


# 3. invalid model output


def test_a_valid_output_passes():
    validate_model_output(toy_output(), toy_arrays(), "o.h5")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("eval_rates_heldin", -0.1, "non-negative"),
        ("eval_rates_heldout", np.nan, "finite"),
        ("train_rates_heldin", np.inf, "finite"),
        ("eval_rates_heldout", np.ones((2, 5, 3)), "shape"),  # units
        ("eval_rates_heldin", np.ones((2, 4, 3)), "shape"),  # bins
        ("train_rates_heldout", np.ones((3, 5, 2)), "shape"),  # trials
        ("eval_rates_heldin_forward", np.ones((2, 5, 3)), "shape"),  # the window's bins, not the forward bins
        ("eval_rates_heldin", np.ones((2, 5)), "shape"),
        ("eval_latents", np.nan, "finite"),
        ("eval_latents", np.zeros((2, 5)), "shape"),
        ("eval_latents", np.zeros((2, 5, 0)), "at least one"),
        ("latents/train_states", np.zeros((4, 6, 2)), "shape"),
        ("latents/train_ic_mean", np.inf, "finite"),
        ("eval_rates_heldin", None, "missing"),
    ],
)
def test_invalid_outputs_are_named(key, value, problem):
    output = toy_output()
    if value is None:
        del output[key]
    elif np.ndim(value) == 0:
        output[key] = output[key].copy()
        output[key].flat[0] = value
    else:
        output[key] = value
    with pytest.raises(InputError, match=problem) as error:
        validate_model_output(output, toy_arrays(), "run/output.h5")
    assert error.value.field == key and error.value.path == "run/output.h5"


def test_latents_group_round_trips(tmp_path):
    path = tmp_path / "output.h5"
    write_model_output(path, toy_output(), {"model": "m"}, data=toy_arrays())
    arrays, _ = read_model_output(path)
    assert set(arrays) == set(toy_output()) and arrays["latents/train_states"].shape == (4, 5, 2)
    with h5py.File(path) as f:
        assert isinstance(f["latents"], h5py.Group)


def test_invalid_output_is_not_written(tmp_path):
    output = toy_output()
    output["eval_rates_heldin"][0, 0, 0] = np.nan
    with pytest.raises(InputError, match="eval_rates_heldin"):
        write_model_output(tmp_path / "output.h5", output, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad_rate", [-1.0, np.nan, np.inf])
def test_scoring_an_invalid_attractor_output_stops_with_one_line(tmp_path, bad_rate):
    split = {"train": 8, "valid": 4, "test": 4}
    arrays, attrs = make_attractor_dataset("lorenz", 5, 16, 10, split, seed=0)
    data = tmp_path / "lorenz.h5"
    write_binned(data, arrays, attrs)
    output = tmp_path / "output.h5"
    with h5py.File(output, "w") as f:  # as a foreign or broken writer would leave it
        rates = np.ones(arrays["eval_spikes_heldin"].shape)
        rates[0, 0, 0] = bad_rate
        f["eval_rates_heldin"] = rates
    out = tmp_path / "metrics.json"
    status, stderr = run_script("evaluate.py", "--data", data, "--output", output, "--out", out)
    assert status == 2 and stderr == [f"error: {output}: field 'eval_rates_heldin': rates must be finite and "
                                      "non-negative"]
    assert not out.exists()


def test_nlb_metrics_without_heldout_targets_skip_what_needs_them(capsys):
    targets, submission, expected = load_reference_vector("bin20")
    del targets["eval_spikes_heldout"]
    metrics = evaluate_submission(targets, submission, "mc_maze")
    assert set(metrics) == set(expected) - {"co-bps"}
    assert metrics["psth R2"] == pytest.approx(expected["psth R2"], rel=1e-9)
    assert capsys.readouterr().err.splitlines() == ["mc_maze: co-bps not computed: the dataset has no "
                                                    "eval_spikes_heldout"]
    for key in ("eval_rates_heldout", "train_rates_heldout"):  # a model of the held-in units only
        del submission[key]
    metrics = evaluate_submission(targets, submission, "mc_maze")
    assert set(metrics) == {"vel R2", "fp-bps"}
    assert capsys.readouterr().err.splitlines()[-1] == ("mc_maze: psth R2 not computed: the PSTH has 19 units, "
                                                        "the eval rates 14")


# 4. unreadable files


def broken_copies(tmp_path, source):
    """A truncated (first 100 bytes) and an empty copy of `source`."""
    truncated, empty = tmp_path / f"truncated{source.suffix}", tmp_path / f"empty{source.suffix}"
    truncated.write_bytes(source.read_bytes()[:100])
    empty.write_bytes(b"")
    return [truncated, empty]


@pytest.mark.parametrize("which", [0, 1])
def test_broken_nwb_stops_binning_with_one_line(tmp_path, which):
    nwb = broken_copies(tmp_path, REFERENCE_NWB)[which]
    out = tmp_path / "binned.h5"
    status, stderr = run_script("bin_nwb.py", "--nwb", nwb, "--dataset", "mc_maze", "--bin-ms", 20, "--phase", "val",
                                "--out", out)
    assert status == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: {nwb}: field '<file>': cannot read")
    assert not out.exists()


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("broken", ["data", "output"])
def test_broken_binned_file_or_output_stops_evaluation_with_one_line(tmp_path, broken, which):
    paths = {"data": write_toy(tmp_path / "d.h5", toy_arrays()), "output": tmp_path / "output.h5"}
    write_model_output(paths["output"], toy_output(), {"model": "m", "seed": 0, "model_params": {}})
    paths[broken] = broken_copies(tmp_path, paths[broken])[which]
    out = tmp_path / "metrics.json"
    status, stderr = run_script("evaluate.py", "--data", paths["data"], "--output", paths["output"], "--out", out)
    assert status == 2 and len(stderr) == 1
    assert stderr[0].startswith(f"error: {paths[broken]}: field '<file>': cannot read")
    assert not out.exists()


def test_broken_fixed_points_file_stops_the_figure_with_one_line(tmp_path):
    data = write_toy(tmp_path / "d.h5", toy_arrays())
    fixed_points = broken_copies(tmp_path, data)[0]
    png = tmp_path / "fig.png"
    status, stderr = run_script("plot_figure.py", "eigenvalues", "--data", data, "--outputs", tmp_path / "o.h5",
                                "--fixed-points", fixed_points, "--out", png)
    assert status == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: {fixed_points}: field '<file>'")
    assert not png.exists()


@pytest.mark.parametrize(
    "read",
    [read_binned, read_model_output, lambda path: load_test_targets(path, "mc_maze", 5),
     lambda path: read_recording([path])],
)
def test_every_reader_names_a_broken_file(tmp_path, read):
    for path in broken_copies(tmp_path, REFERENCE_NWB):
        with pytest.raises(InputError) as error:
            read(path)
        assert error.value.path == str(path) and error.value.field == "<file>" and "\n" not in str(error.value)


def test_the_guard_covers_checkpoints(tmp_path):
    import torch

    checkpoint = tmp_path / "model.pt"
    torch.save({"epoch": 3}, checkpoint)
    for path in broken_copies(tmp_path, checkpoint):
        with pytest.raises(InputError, match="cannot read this checkpoint") as error, reading(path, "checkpoint"):
            torch.load(path, weights_only=True)
        assert error.value.path == str(path)


@pytest.mark.parametrize("error", [InputError("data.h5", "spikes", "has NaN"), ConfigError("config: key 'models': empty")])
def test_entry_points_report_bad_input_and_bad_config_as_one_line(capsys, error):
    def failing_main():
        raise error

    with pytest.raises(SystemExit) as exit_:
        main_guard(failing_main)()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: {error}\n"
