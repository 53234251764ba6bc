"""AutoLFADS experiments 1 and 2 (small_data_study, cd_study): config/autolfads_small.yaml plans them,
LFADS logs the rate R² against the truth per epoch, and their figures draw tables and histories."""

import numpy as np
import pandas as pd
import pytest
import yaml

from latentdyn.models.kinds import resolve_model
from latentdyn.models.pipeline import train
from latentdyn.plots.overfitting import TRAINING_CURVES, plot_metrics_vs_trials, plot_training_curves_vs_truth
from latentdyn.training.reporting import HISTORY_NAME
from workflow_api import REPO, run_workflow

SMALL_CONFIG = REPO / "config" / "autolfads_small.yaml"


def test_the_small_config_plans_both_experiments_and_nothing_else(tmp_path):
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    small, cd = config["small_data_study"], config["cd_study"]
    runs = {name: len(s["datasets"]) * len(s["trial_counts"]) * len(s["models"]) * len(s["seeds"])
            for name, s in (("small", small), ("cd", cd))}
    jobs = run_workflow(tmp_path, [SMALL_CONFIG])
    assert jobs["train"] == jobs["predict"] == jobs["evaluate"] == runs["small"] + runs["cd"]
    assert jobs["keep_full_trials"] == len(small["trial_counts"]) + len(cd["trial_counts"])
    assert jobs["figure_small_data"] == jobs["figure_cd_validation"] == 1 and jobs["collect_metrics"] == 2
    assert "figure_nlb_metrics" not in jobs and "simulate_attractor" not in jobs


def test_lfads_logs_the_rate_r2_against_the_truth_each_epoch(tmp_path):
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.2, 2.0, (20, 6, 4)).astype(np.float32)
    data = {"train_spikes_heldin": rng.poisson(rates).astype(np.float32), "train_true_rates_heldin": rates,
            "eval_spikes_heldin": rng.poisson(rates[:5]).astype(np.float32), "eval_true_rates_heldin": rates[:5]}
    params = resolve_model("x", {"kind": "lfads", "ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 0,
                                 "ic_dim": 4, "gen_dim": 4, "fac_dim": 2, "batch_size": 8, "epochs": 2})
    train(params, data, {"dataset": "random", "bin_width_s": 0.02}, run_dir=tmp_path, seed=0, device="cpu")
    history = pd.read_csv(tmp_path / HISTORY_NAME)
    assert len(history) == 2 and np.isfinite(history["valid_rate_r2"]).all()


def test_the_figures_draw_metrics_against_trials_and_histories_against_the_truth():
    table = pd.DataFrame({"dataset": ["reaching_20ms_full36", "reaching_20ms_full144"] * 2,
                          "model": ["lfads_demo"] * 2 + ["autolfads_small"] * 2, "seed": 0,
                          "co-bps": [0.14, 0.16, 0.13, 0.17], "rate_r2": [0.5, 0.8, 0.4, 0.85]})
    colours = {"lfads_demo": "tab:red", "autolfads_small": "tab:pink"}
    figure = plot_metrics_vs_trials(table, colours)
    assert [ax.get_ylabel() for ax in figure.axes] == ["co-bps", "rate R² (vs truth)"]
    assert [line.get_xdata().tolist() for line in figure.axes[0].get_lines()[:2]] == [[36, 144]] * 2
    history = pd.DataFrame({"epoch": [1, 2, 3], **{column: [1.0, 0.5, 0.2] for column in TRAINING_CURVES}})
    histories = {("chaotic_rnn_full40", "lfads_cd", 0): history, ("chaotic_rnn_full40", "lfads_nocd", 0): history}
    histories.update({("chaotic_rnn_full160", model, 0): history for model in ("lfads_cd", "lfads_nocd")})
    figure = plot_training_curves_vs_truth(histories, {"lfads_cd": "tab:red", "lfads_nocd": "tab:red"})
    assert len(figure.axes) == 2 * len(TRAINING_CURVES) and all(len(ax.get_lines()) == 2 for ax in figure.axes)
    assert [ax.get_title() for ax in figure.axes[::3]] == [f"chaotic_rnn_full{n}\nvalidation NLL (ordinary)" for n in (40, 160)]
    colours = {line.get_color() for line in figure.axes[0].get_lines()}
    assert len(colours) == 2  # two variants of one kind told apart
    with pytest.raises(ValueError, match="<dataset>_full<n>"):
        plot_metrics_vs_trials(table.assign(dataset="reaching_20ms"), colours)
