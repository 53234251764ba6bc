"""The generative study (workflow/rules/generative.smk, metrics/generation.py): planned by its small config,
run end to end on tiny models, and its config checked before any job."""

import importlib.util
import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from latentdyn.data import reaching, subsets
from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.nlb import make_binned_tensors
from latentdyn.data.nlb_specs import dataset_spec
from latentdyn.errors import ConfigError, InputError
from latentdyn.metrics import generation
from nlb_reference import REFERENCE_DIR
from workflow_api import REPO, TINY_CONFIG, run_workflow

SMALL_CONFIG = REPO / "config" / "generative_small.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"
TINY_STUDY = {"generative_study": {"datasets": ["reaching_20ms"],
                                   "withheld_conditions": {"reaching_20ms": ["trial_type=1, trial_version=0"]},
                                   "models": ["gnocchi_tiny", "lfads_tiny"], "seeds": [0]}}


@pytest.fixture(scope="module")
def binned_reaching(tmp_path_factory):
    """The simulated reaching task (8 directions) binned at 20 ms through the MC_Maze path, val phase."""
    folder = tmp_path_factory.mktemp("reaching")
    config = reaching.ReachingConfig(n_directions=8, trials_per_direction=10, n_neurons=16, seed=2)
    reaching.make_reaching_dataset(folder / "r.nwb", folder / "r_truth.h5", config)
    return make_binned_tensors([folder / "r.nwb"], dataset_spec("mc_maze"), 20, "val", truth_path=folder / "r_truth.h5")


def test_condition_angles_are_the_true_reach_directions(binned_reaching):
    """The mean displacement over the window points within a few degrees of the simulated direction (its
    rotational dynamics curve the reach a little: 2.7° at most here)."""
    arrays, attrs = binned_reaching
    angles = subsets.condition_angles(arrays)
    directions = [int(name.split(",")[0].removeprefix("trial_type=")) for name in attrs["conditions"]]
    gaps = (angles - 2 * np.pi * np.array(directions) / 8 + np.pi) % (2 * np.pi) - np.pi
    assert np.degrees(np.abs(gaps)).max() < 5.0


def test_withheld_conditions_leave_training_and_their_trials_move_to_evaluation(binned_reaching):
    arrays, attrs = binned_reaching
    derived, derived_attrs = subsets.withhold_conditions(arrays, attrs, 2)
    withheld = [attrs["conditions"].index(name) for name in derived_attrs["withheld_conditions"]]
    assert np.degrees(subsets.condition_angles(arrays)[withheld]) == pytest.approx([90, 270], abs=5)
    train, evaluation = (subsets.trial_conditions(derived, split) for split in ("train", "eval"))
    assert not np.isin(train, withheld).any()
    n_eval = len(arrays["eval_spikes_heldin"])
    for condition in range(len(attrs["conditions"])):
        before = np.concatenate([arrays["train_trial_ids"][arrays["train_cond_idx"][condition]],
                                 arrays["eval_trial_ids"][arrays["eval_cond_idx"][condition]]])
        after = np.concatenate([derived["train_trial_ids"][derived["train_cond_idx"][condition]],
                                derived["eval_trial_ids"][derived["eval_cond_idx"][condition]]])
        assert sorted(before) == sorted(after)  # no trial lost or doubled
    moved = np.arange(n_eval, len(derived["eval_spikes_heldin"]))
    assert np.isin(evaluation[moved], withheld).all() and len(moved) == derived_attrs["n_train_moved"] == 12
    source_rows = np.searchsorted(arrays["train_trial_ids"], derived["eval_trial_ids"][moved])
    for key in ("spikes_heldin", "spikes_heldout", "behavior", "true_rates_heldin", "spikes_heldout_forward"):
        np.testing.assert_array_equal(derived[f"eval_{key}"][moved], arrays[f"train_{key}"][source_rows])
        np.testing.assert_array_equal(derived[f"eval_{key}"][:n_eval], arrays[f"eval_{key}"])
    by_name, _ = subsets.withhold_conditions(arrays, attrs, derived_attrs["withheld_conditions"])
    assert all(np.array_equal(by_name[key], derived[key]) for key in derived if not key.endswith("cond_idx"))


def test_a_maze_recording_withholds_the_condition_nearest_the_chosen_angle():
    """MC_Maze's layout (the NLB reference vector, 8 trial_type × trial_version conditions whose reaches
    point at 0°, 30°, 90°, ... 300°): withholding one condition takes the one reaching nearest 180°."""
    arrays, attrs = make_binned_tensors([REFERENCE_DIR / "nlb_vectors" / "maze_simple.nwb"], dataset_spec("mc_maze"),
                                        20, "val")
    angles = np.degrees(subsets.condition_angles(arrays))
    assert np.abs((angles - [0, 30, 90, 120, 180, 210, 270, 300] + 180) % 360 - 180).max() < 0.1
    derived, derived_attrs = subsets.withhold_conditions(arrays, attrs, 1)
    assert derived_attrs["withheld_conditions"] == ["trial_type=2, trial_version=0"]
    assert len(derived["train_cond_idx"][4]) == 0 and len(derived["eval_cond_idx"][4]) == 4


@pytest.mark.parametrize("withheld", [["trial_type=9, trial_version=0"], 8, 0, -1, [], 2.5, True])
def test_conditions_that_cannot_be_withheld_are_one_line_naming_the_file(tmp_path, binned_reaching, withheld):
    arrays, attrs = binned_reaching
    with pytest.raises(InputError, match="conditions"):
        subsets.withhold_conditions(arrays, attrs, withheld, path="data.h5")
    write_binned(tmp_path / "in put.h5", arrays, attrs)
    out = tmp_path / "out.h5"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "keep_trials.py"), "--data", str(tmp_path / "in put.h5"),
                             "--withhold", json.dumps(withheld),
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2 and "in put.h5" in result.stderr and not out.exists()


def test_the_small_config_plans_the_study_and_nothing_else(tmp_path):
    study = yaml.safe_load(SMALL_CONFIG.read_text())["generative_study"]
    jobs = run_workflow(tmp_path, [DEMO_CONFIG, SMALL_CONFIG])
    runs = len(study["models"]) * len(study["seeds"])
    assert jobs["train"] == jobs["predict"] == jobs["evaluate"] == runs
    assert jobs["generative_study"] == jobs["figure_generative"] == jobs["simulate_reaching"] == 1
    assert jobs["withhold_conditions"] == 1
    assert "simulate_attractor" not in jobs and "figure_nlb_metrics" not in jobs


def test_a_whole_float_count_counts_and_a_name_given_twice_is_withheld_once(binned_reaching):
    """JSON's 2.0 passes the config schema as an integer; a name twice is one condition."""
    arrays, attrs = binned_reaching
    _, by_count = subsets.withhold_conditions(arrays, attrs, 2)
    _, by_float = subsets.withhold_conditions(arrays, attrs, 2.0)
    assert by_float["withheld_conditions"] == by_count["withheld_conditions"]
    name = attrs["conditions"][1]
    _, twice = subsets.withhold_conditions(arrays, attrs, [name, name])
    assert twice["withheld_conditions"] == [name] and twice["n_train_moved"] == len(arrays["train_cond_idx"][1])


def without_reach(arrays, condition):
    """`arrays` with every trial of `condition` holding still (zero hand velocity)."""
    still = dict(arrays)
    for split in ("train", "eval"):
        still[f"{split}_behavior"] = arrays[f"{split}_behavior"].copy()
        still[f"{split}_behavior"][arrays[f"{split}_cond_idx"][condition]] = 0.0
    return still


def test_a_condition_without_a_reach_has_no_angle_and_is_not_withheld(binned_reaching):
    """atan2(0, 0) = 0 would call a condition holding still a reach at 0°, and the study would score it."""
    arrays, attrs = binned_reaching
    angles = subsets.condition_angles(arrays)
    still = without_reach(arrays, 4)  # the reach at 180°: withholding one takes the one nearest 180°
    assert np.isnan(subsets.condition_angles(still)[4])
    np.testing.assert_array_equal(np.delete(subsets.condition_angles(still), 4), np.delete(angles, 4))
    _, derived_attrs = subsets.withhold_conditions(still, attrs, 1)
    assert attrs["conditions"][4] not in derived_attrs["withheld_conditions"]
    with pytest.raises(InputError, match="no reach"):
        subsets.withhold_conditions(still, attrs, [attrs["conditions"][4]], path="data.h5")
    for condition in range(1, 8):
        still = without_reach(still, condition)
    with pytest.raises(InputError, match="only 1 conditions have a reach"):
        subsets.withhold_conditions(still, attrs, 2, path="data.h5")


def test_nan_velocity_in_a_trial_with_a_condition_is_refused_before_training(binned_reaching):
    """The study decodes velocity in every bin; an outlier trial of no condition may lack it."""
    arrays, attrs = binned_reaching
    gappy = dict(arrays, train_behavior=arrays["train_behavior"].copy())
    gappy["train_behavior"][0, 3:5] = np.nan
    with pytest.raises(InputError, match="'train_behavior': 2 bins"):
        subsets.withhold_conditions(gappy, attrs, 2, path="data.h5")
    outlier = arrays["train_cond_idx"][0][0]
    gappy["train_behavior"] = arrays["train_behavior"].copy()
    gappy["train_behavior"][outlier] = np.nan
    gappy["train_cond_idx"] = [rows[rows != outlier] for rows in arrays["train_cond_idx"]]
    derived, _ = subsets.withhold_conditions(gappy, attrs, 2)
    generation.velocity_decoder(derived["train_spikes_heldin"].astype(float), derived["train_behavior"])


@pytest.fixture(scope="module")
def study_workdir(tmp_path_factory):
    """The tiny study run once through the workflow (about 25 s on 2 cores)."""
    workdir = tmp_path_factory.mktemp("study")
    run_workflow(workdir, [TINY_CONFIG], config=TINY_STUDY, executor="local",
                 targets=["results/figures/generative_reaching_20ms_unseen.png", "results/tables/generative_study.csv"])
    return workdir


def test_the_study_runs_end_to_end_and_scores_every_run(study_workdir):
    tmp_path = study_workdir
    tables = {name: pd.read_csv(tmp_path / "results" / "tables" / f"generative_{name}.csv")
              for name in ("disentanglement", "unseen", "realism")}
    models = {"gnocchi_tiny", "lfads_tiny"}
    assert set(tables["disentanglement"]["model"]) == models
    assert set(tables["unseen"]["model"]) == models | {"nearest seen"}
    assert set(tables["unseen"]["condition"]) == {"trial_type=1, trial_version=0"}
    assert tables["unseen"]["angle_deg"].between(80, 100).all()  # direction 1 of 4: 90°
    assert all(set(table["dataset"]) == {"reaching_20ms_unseen"} for table in tables.values())
    assert set(tables["realism"]["model"]) == models | {"real half vs half"}
    for table in tables.values():
        numbers = table.drop(columns=["dataset", "model", "condition"], errors="ignore").to_numpy(dtype=float)
        assert np.isfinite(numbers).all()
    metrics = pd.read_csv(tmp_path / "results" / "tables" / "generative_study.csv")
    figure = tmp_path / "results" / "figures" / "generative_reaching_20ms_unseen.png"
    assert set(metrics["model"]) == models and figure.stat().st_size > 0


@pytest.mark.parametrize(
    ("study", "named"),
    [
        ({**TINY_STUDY["generative_study"], "models": ["smoothing"]}, "generative_study.models"),
        ({**TINY_STUDY["generative_study"], "datasets": ["lorenz_20ms"]}, "generative_study.datasets"),
        ({**TINY_STUDY["generative_study"], "datasets": ["reaching_5ms"]}, "generative_study.withheld_conditions"),
        ({**TINY_STUDY["generative_study"], "withheld_conditions": {"reaching_20ms": 0}},
         "generative_study.withheld_conditions"),
        ({**TINY_STUDY["generative_study"], "withheld_conditions": {"reaching_20ms": 4}},  # tiny: 4 directions
         "generative_study.withheld_conditions.reaching_20ms"),
    ],
)
def test_a_model_that_cannot_generate_or_a_dataset_without_conditions_is_named(tmp_path, study, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        run_workflow(tmp_path, [TINY_CONFIG], config={"generative_study": study})
    assert not (tmp_path / "results").exists()


def test_unseen_r2_is_not_swamped_by_a_flat_velocity_component_or_unit():
    """A reach straight up: x velocity nearly 0 throughout. Decoding its y velocity well and its x
    velocity with a small error scores near 1, as the error is small against the reach; a plain mean
    of per-component R² would be far below 0, as it is on the flat x component alone."""
    rng = np.random.default_rng(1)
    bins, units = 12, 4
    y_velocity = np.sin(np.linspace(0, np.pi, bins))
    real_velocity = np.stack([1e-3 * rng.standard_normal(bins), y_velocity], axis=-1)
    rates = np.stack([y_velocity + 1.0, 0.5 * y_velocity + 1.0, np.full(bins, 1.0), np.full(bins, 2.0)], axis=-1)
    rates[:, 2] += 1e-3 * rng.standard_normal(bins)  # a unit flat in this condition
    generated = rates[None] + 0.02 * rng.standard_normal((5, bins, units))
    decoder = Ridge(alpha=1e-6).fit(rates, real_velocity + [0.02, 0.0])  # x decoded 0.02 off
    scores, _ = generation.unseen_scores(generated, rates, real_velocity, decoder)
    assert scores["velocity_r2"] > 0.9 and scores["psth_r2"] > 0.9
    assert r2_score(real_velocity[:, 0], generation.decode_velocity(decoder, generated.mean(0)[None])[0, :, 0]) < -10


def test_a_withheld_condition_is_scored_against_its_own_trials_and_the_nearest_seen_one():
    """On known rates: generating the withheld condition's true rates scores PSTH R² 1 and angle error 0;
    the nearest seen condition is found across the wrap-around."""
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.1, 2.0, (10, 12, 5))
    velocity = np.stack([np.full(12, 1.0), np.full(12, 1.0)], axis=-1)  # a 45° reach
    decoder = generation.velocity_decoder(rates, np.repeat(velocity[None], 10, axis=0) * rates[..., :1])
    scores, _ = generation.unseen_scores(rates, rates.mean(0), generation.decode_velocity(decoder, rates.mean(0)[None])[0],
                                         decoder)
    assert scores["psth_r2"] == pytest.approx(1.0) and scores["angle_error_deg"] == pytest.approx(0.0, abs=1e-6)
    seen_angles = 2 * np.pi * np.array([0, 3, 5]) / 8
    assert generation.nearest_seen(2 * np.pi * 7 / 8, seen_angles) == 0
    assert generation.nearest_seen(2 * np.pi * 4.4 / 8, seen_angles) == 2
    assert generation.reach_angle_error_deg(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(90.0)


def study_script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))  # for the script's _bootstrap import
    spec = importlib.util.spec_from_file_location("generative_study", REPO / "scripts" / "generative_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("fault", ["withheld condition holds still", "model generates NaN", "NaN code"])
def test_what_cannot_be_scored_is_one_line_and_no_table(tmp_path, study_workdir, monkeypatch, capsys, fault):
    """A withheld condition without a reach would be scored at 0°; a diverged model's NaN rates or a
    NaN code crashed sklearn with a traceback: each is one line naming the file, exit 2, nothing written."""
    data = tmp_path / "reaching_20ms_unseen.h5"
    arrays, attrs = read_binned(study_workdir / "results" / "data" / "binned" / data.name)
    if fault == "withheld condition holds still":
        arrays = without_reach(arrays, attrs["conditions"].index(attrs["withheld_conditions"][0]))
    elif fault == "model generates NaN":
        monkeypatch.setattr("latentdyn.models.gnocchi.model.generate",
                            lambda model, codes: torch.full((len(codes), 100, 100), torch.nan))
    write_binned(data, arrays, attrs)
    shutil.copytree(study_workdir / "results" / "runs", tmp_path / "runs")
    if fault == "NaN code":
        with h5py.File(tmp_path / "runs" / data.stem / "gnocchi_tiny" / "seed0" / "output.h5", "a") as f:
            f["latents/train_code"][0, 0] = np.nan
    outputs = sorted(str(p) for p in (tmp_path / "runs").glob("*/*/seed0/output.h5"))
    tables = {name: tmp_path / f"{name}.csv" for name in ("disentanglement", "unseen", "realism")}
    with pytest.raises(SystemExit) as exit_status:
        study_script(monkeypatch).main(["--data", str(data), "--outputs", *outputs, "--figure-data",
                                        str(tmp_path / "figure.h5"), *(f"--{k}={v}" for k, v in tables.items())])
    error = capsys.readouterr().err.strip().splitlines()
    named = {"withheld condition holds still": "'eval_behavior'",
             "model generates NaN": "gnocchi_tiny/seed0/model.pt: field 'generate'",
             "NaN code": "gnocchi_tiny/seed0/output.h5: field 'latents/train_code'"}[fault]
    assert exit_status.value.code == 2 and len(error) == 1 and named in error[0]
    assert not any(path.exists() for path in [*tables.values(), tmp_path / "figure.h5"])
