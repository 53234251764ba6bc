"""The generative study (workflow/rules/generative.smk, metrics/generation.py): planned by its small config,
run end to end on tiny models, and its config checked before any job."""

import numpy as np
import pandas as pd
import pytest
import yaml

from latentdyn.errors import ConfigError
from latentdyn.metrics import generation
from workflow_api import REPO, TINY_CONFIG, run_workflow

SMALL_CONFIG = REPO / "config" / "generative_small.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"
TINY_STUDY = {"generative_study": {"bin_sizes_ms": [20], "withheld_directions": [1], "models": ["gnocchi_tiny", "lfads_tiny"],
                                   "seeds": [0]}}


def test_the_small_config_plans_the_study_and_nothing_else(tmp_path):
    study = yaml.safe_load(SMALL_CONFIG.read_text())["generative_study"]
    jobs = run_workflow(tmp_path, [DEMO_CONFIG, SMALL_CONFIG])
    runs = len(study["models"]) * len(study["seeds"])
    assert jobs["train"] == jobs["predict"] == jobs["evaluate"] == runs
    assert jobs["generative_study"] == jobs["figure_generative"] == jobs["simulate_reaching"] == 1
    assert "simulate_attractor" not in jobs and "figure_nlb_metrics" not in jobs


def test_the_study_runs_end_to_end_and_scores_every_run(tmp_path):
    run_workflow(tmp_path, [TINY_CONFIG], config=TINY_STUDY, executor="local",
                 targets=["results/figures/generative.png", "results/tables/generative_study.csv"])
    tables = {name: pd.read_csv(tmp_path / "results" / "tables" / f"generative_{name}.csv")
              for name in ("disentanglement", "unseen", "realism")}
    models = {"gnocchi_tiny", "lfads_tiny"}
    assert set(tables["disentanglement"]["model"]) == models
    assert set(tables["unseen"]["model"]) == models | {"nearest seen"} and set(tables["unseen"]["direction"]) == {1}
    assert set(tables["realism"]["model"]) == models | {"real half vs half"}
    for table in tables.values():
        numbers = table.drop(columns=["model"]).to_numpy(dtype=float)
        assert np.isfinite(numbers).all()
    metrics = pd.read_csv(tmp_path / "results" / "tables" / "generative_study.csv")
    assert set(metrics["model"]) == models and (tmp_path / "results" / "figures" / "generative.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("study", "named"),
    [
        ({**TINY_STUDY["generative_study"], "models": ["smoothing"]}, "generative_study.models"),
        ({**TINY_STUDY["generative_study"], "withheld_directions": [9]}, "generative_study.withheld_directions"),
    ],
)
def test_a_model_that_cannot_generate_or_a_direction_that_does_not_exist_is_named(tmp_path, study, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        run_workflow(tmp_path, [TINY_CONFIG], config={"generative_study": study})
    assert not (tmp_path / "results").exists()


def test_a_withheld_direction_is_scored_against_its_own_trials_and_the_nearest_seen_one():
    """On known rates: generating the withheld direction's true rates scores PSTH R² 1 and angle error 0;
    the nearest seen direction is found across the wrap-around."""
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.1, 2.0, (10, 12, 5))
    velocity = np.stack([np.full(12, 1.0), np.full(12, 1.0)], axis=-1)  # a 45° reach
    decoder = generation.velocity_decoder(rates, np.repeat(velocity[None], 10, axis=0) * rates[..., :1])
    scores, _ = generation.unseen_scores(rates, rates.mean(0), generation.decode_velocity(decoder, rates.mean(0)[None])[0],
                                         decoder)
    assert scores["psth_r2"] == pytest.approx(1.0) and scores["angle_error_deg"] == pytest.approx(0.0, abs=1e-6)
    assert generation.nearest_seen_direction(7, [0, 3, 5], 8) == 0
    assert generation.reach_angle_error_deg(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(90.0)
