"""The workflow as users run it: planning the paper config, config validation, a real tiny run."""

import json
import subprocess
import sys

import h5py
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError

from latentdyn.config import ConfigError
from workflow_api import PAPER_CONFIG, REPO, TINY_CONFIG, run_workflow


def test_paper_config_plans_every_combination(tmp_path):
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    study, nlb = config["attractor_study"], config["nlb_study"]
    attractor_runs = len(study["systems"]) * len(study["models"]) * len(study["latent_sizes"]) * len(study["seeds"])
    nlb_runs = len(nlb["datasets"]) * len(nlb["bin_sizes_ms"]) * len(nlb["models"]) * len(nlb["seeds"])
    jobs = run_workflow(tmp_path)
    assert jobs["train"] == jobs["evaluate"] == attractor_runs + nlb_runs
    assert jobs["simulate_attractor"] == len(study["systems"])
    assert jobs["download_nlb"] == len([d for d in nlb["datasets"] if d in config["nlb_sources"]])
    assert jobs["bin_nwb"] == len(nlb["datasets"]) * len(nlb["bin_sizes_ms"])
    per_system = len(study["models"]) * len(study["trajectory_latent_sizes"])
    assert jobs["fixed_points"] == len(study["systems"]) * per_system
    assert jobs["figure_metric_vs_latent"] == 3 and jobs["collect_metrics"] == 2


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"epochz": 3}, "epochz"),
        ({"attractor_study": {"seeds": "zero"}}, "seeds"),
        ({"attractors": {"n_neurons": 0}}, "n_neurons"),
        ({"models": {"gru": {"kind": "transformer"}}}, "kind"),
        ({"models": {"node": {"dropout": 1.5}}}, "dropout"),
        ({"device": "gpu"}, "device"),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, override, named):
    with pytest.raises(ConfigError) as error:
        run_workflow(tmp_path, config=override)
    assert named in str(error.value) and len(str(error.value).splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_unknown_model_in_a_study_is_named(tmp_path):
    with pytest.raises(Exception, match=r"attractor_study\.models: no model named 'lstm'"):
        run_workflow(tmp_path, config={"attractor_study": {"models": ["lstm"]}})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    run_workflow(workdir, [TINY_CONFIG], executor="local", report=workdir / "report.html")
    return workdir


def test_tiny_workflow_produces_every_target(tiny_run):
    figures = tiny_run / "results" / "figures"
    for name in (
        "fig1a_example_data_lorenz",
        "fig1c_nll",
        "fig2a_rate_r2",
        "fig2c_state_r2",
        "fig3a_latent_trajectories_lorenz",
        "fig3b_fixed_point_eigenvalues_lorenz",
        "nlb_metrics",
    ):
        for suffix in (".png", ".pdf"):
            assert (figures / f"{name}{suffix}").stat().st_size > 1000
    assert (tiny_run / "report.html").stat().st_size > 10_000


def test_tiny_workflow_tables_and_outputs(tiny_run):
    attractors = pd.read_csv(tiny_run / "results" / "tables" / "attractor_study.csv")
    assert set(attractors["model"]) == {"gru-L3", "node-L3"}
    assert attractors[["nll", "rate_r2", "state_r2"]].notna().all().all()
    nlb = pd.read_csv(tiny_run / "results" / "tables" / "nlb_study.csv")
    assert nlb.loc[0, "dataset"] == "reaching_20ms" and {"co-bps", "vel R2", "psth R2", "fp-bps"} <= set(nlb.columns)
    run = tiny_run / "results" / "runs" / "lorenz" / "node-L3" / "seed0"
    with h5py.File(run / "output.h5") as f:
        assert f["eval_rates_heldin"].shape == (8, 20, 6) and f["eval_latents"].shape == (8, 20, 3)
    assert json.loads((run / "metrics.json").read_text())["latent_size"] == 3
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_rerunning_a_finished_target_does_nothing(tiny_run):
    jobs = run_workflow(tiny_run, [TINY_CONFIG])
    assert sum(jobs.values()) == 0


def test_lint_and_format_are_clean():
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr
    snakefmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"], cwd=REPO, capture_output=True, text=True
    )
    assert snakefmt.returncode == 0, snakefmt.stdout + snakefmt.stderr


def test_user_dataset_with_a_missing_field_fails_naming_it(tiny_run, tmp_path):
    nwb = tiny_run / "results" / "data" / "nwb" / "reaching" / "reaching.nwb"
    user = {
        "nwb": [str(nwb)],
        "align_field": "reach_start_time",
        "window_ms": [-250, 450],
        "behavior_fields": ["hand_vel"],
        "behavior_lag_ms": 100,
        "condition_fields": ["trial_type"],
        "psth_sigma_ms": 70,
        "allow_overlap": False,
    }
    config = {"user_datasets": {"mine": user}}
    with pytest.raises(WorkflowError):
        run_workflow(tmp_path, [TINY_CONFIG], config, targets=["results/data/binned/mine_20ms.h5"], executor="local")
    log = (tmp_path / "results" / "logs" / "bin_nwb" / "mine_20ms.log").read_text().strip().splitlines()
    assert log[-1].startswith(f"error: {nwb}: field 'reach_start_time': missing")
    assert not (tmp_path / "results" / "data" / "binned" / "mine_20ms.h5").exists()

    user["align_field"] = "move_onset_time"
    run_workflow(tmp_path, [TINY_CONFIG], config, targets=["results/data/binned/mine_20ms.h5"], executor="local")
    assert (tmp_path / "results" / "data" / "binned" / "mine_20ms.h5").exists()
