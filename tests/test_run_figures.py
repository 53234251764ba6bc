"""Per-run figures (rates against the truth, factors, inferred inputs, training curves): the plot functions
on synthetic arrays, the plot script's subcommands on synthetic files (bad input named in one line), and
the figures the workflow plans from what each kind offers."""

import importlib.util
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from latentdyn.data.format import write_binned, write_model_output
from latentdyn.models.kinds import get_kind
from latentdyn.plots import run_figures
from workflow_api import REPO, TINY_CONFIG, run_workflow

BIN_S = 0.02
WINDOW_MS = [-100, 140]  # 12 bins around the alignment event
N_BINS = 12


def smooth_trajectories(n_trials, n_bins, seed=0):
    """Distinct 3-D trajectories (trials × bins × 3), with variance falling from axis 0 to axis 2."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, n_bins)
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1))
    return np.stack([3.0 * np.sin(t + phase), 1.5 * np.cos(2 * t + phase), 0.5 * np.sin(3 * t) * rng.normal(1, 0.3, (n_trials, 1))],
                    axis=-1)


def embed(latents, n_factors, seed=1, noise=0.0):
    """`latents` through a random orthonormal map into `n_factors` dims, plus an offset and noise."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n_factors, latents.shape[-1])))
    return latents @ q.T + rng.normal(size=n_factors) + noise * rng.normal(size=(*latents.shape[:-1], n_factors))


# --- PCA projection of factors ---


def test_factor_projection_recovers_known_trajectories_up_to_rotation():
    latents = smooth_trajectories(20, 30)
    projected, explained = run_figures.project_factors(embed(latents, 12))
    centred = (latents - latents.reshape(-1, 3).mean(axis=0)).reshape(-1, 3)
    rotation, *_ = np.linalg.lstsq(centred, projected.reshape(-1, 3), rcond=None)
    np.testing.assert_allclose(centred @ rotation, projected.reshape(-1, 3), atol=1e-8)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-8)  # a rotation (or reflection)
    assert explained.sum() == pytest.approx(1.0) and np.all(np.diff(explained) < 0)


def test_factor_projection_keeps_the_top_components_under_small_noise():
    latents = smooth_trajectories(20, 30)
    projected, explained = run_figures.project_factors(embed(latents, 40, noise=0.01))
    centred = (latents - latents.reshape(-1, 3).mean(axis=0)).reshape(-1, 3)
    rotation, residual, *_ = np.linalg.lstsq(centred, projected.reshape(-1, 3), rcond=None)
    assert residual.sum() / np.sum(projected**2) < 1e-3
    assert explained.sum() > 0.99


def test_fewer_than_three_factors_are_padded_with_zeros():
    factors = np.random.default_rng(0).normal(size=(4, 6, 2))
    projected, explained = run_figures.project_factors(factors)
    assert projected.shape == (4, 6, 3) and np.all(projected[..., 2] == 0) and explained[2] == 0


def test_factor_figure_draws_one_trajectory_per_trial_coloured_by_condition():
    factors = embed(smooth_trajectories(9, N_BINS), 8)
    cond_idx = [np.array([0, 1, 2]), np.array([3, 4, 5, 6])]  # trials 7, 8 are in no condition
    fig = run_figures.plot_factor_trajectories(factors, BIN_S, cond_idx, start_ms=WINDOW_MS[0])
    keys = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    space, *time_axes = [ax for ax in fig.axes if ax not in keys]
    assert space.name == "3d" and len(time_axes) == 3
    assert len(keys) == 1 and list(keys[0].get_yticks()) == [0, 1]  # a colour key of the two conditions
    assert len(space.get_lines()) == 9 and all(len(ax.get_lines()) == 9 for ax in time_axes)
    colors = [line.get_color() for line in space.get_lines()]
    assert len({colors[0], colors[1], colors[2]}) == 1 and len({colors[3], colors[6]}) == 1
    assert colors[0] != colors[3] and colors[7] == colors[8] == "0.5"
    np.testing.assert_allclose(time_axes[0].get_lines()[0].get_xdata()[0], WINDOW_MS[0] + 1000 * BIN_S / 2)


def test_factor_figure_without_conditions_uses_one_colour_and_caps_the_trials():
    factors = embed(smooth_trajectories(50, N_BINS), 5)
    fig = run_figures.plot_factor_trajectories(factors, BIN_S, None, max_trials=10)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 10 and len({line.get_color() for line in lines}) == 1
    assert not [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]  # no key without conditions


# --- rates against the truth ---


def test_rates_figure_draws_true_and_inferred_rates_of_the_most_variable_neurons():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.1, 0.2, (5, N_BINS, 6))
    true[:, :, [1, 4]] += np.sin(np.linspace(0, 3, N_BINS))[None, :, None] + 1  # the two varying neurons
    inferred = true + rng.normal(0, 0.01, true.shape)
    fig = run_figures.plot_rates_vs_truth(true, inferred, BIN_S, n_neurons=2, n_trials=3, start_ms=WINDOW_MS[0])
    traces, scatter = fig.axes[:-1], fig.axes[-1]
    assert len(traces) == 3 * 2
    assert [ax.get_title() for ax in traces[:2]] == ["neuron 1", "neuron 4"]
    trial2_neuron4 = traces[2 * 2 + 1]
    np.testing.assert_allclose(trial2_neuron4.get_lines()[0].get_ydata(), true[2, :, 4])
    np.testing.assert_allclose(trial2_neuron4.get_lines()[1].get_ydata(), inferred[2, :, 4])
    assert len(scatter.collections[0].get_offsets()) == true.size
    assert "pooled R² = 1.00" in scatter.get_title() or "pooled R² = 0.99" in scatter.get_title()


def test_rates_figure_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        run_figures.plot_rates_vs_truth(np.ones((2, 3, 4)), np.ones((2, 3, 5)), BIN_S)


def test_r2_skips_missing_entries():
    true = np.array([0.0, 1.0, 2.0, np.nan])
    assert run_figures.r2_score(true, np.array([0.0, 1.0, 2.0, 5.0])) == pytest.approx(1.0)
    assert run_figures.r2_score(true, np.full(4, 1.0)) == pytest.approx(0.0)


# --- inferred inputs ---


def test_inputs_figure_draws_mean_per_controller_output_around_the_event():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(7, N_BINS, 3))
    fig = run_figures.plot_inferred_inputs(inputs, BIN_S, start_ms=WINDOW_MS[0], event="move onset")
    assert len(fig.axes) == 3
    for i, ax in enumerate(fig.axes):
        mean, onset = ax.get_lines()
        np.testing.assert_allclose(mean.get_ydata(), inputs[:, :, i].mean(axis=0))
        assert mean.get_xdata()[0] == pytest.approx(-90.0) and list(onset.get_xdata()) == [0.0, 0.0]
    assert fig.axes[-1].get_xlabel() == "time from move onset (ms)"


def test_inputs_figure_without_an_aligned_window_marks_no_event():
    fig = run_figures.plot_inferred_inputs(np.zeros((2, N_BINS, 1)), BIN_S, start_ms=None)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 1 and ax.get_lines()[0].get_xdata()[0] == pytest.approx(10.0)


# --- training curves ---

LFADS_HISTORY = ["epoch", "train_loss", "train_recon", "train_kl_ic", "train_kl_co", "train_l2", "train_kl_ramp",
                 "train_l2_ramp", "valid_loss", "valid_recon", "valid_kl_ic", "valid_kl_co", "valid_l2", "valid_kl_ramp",
                 "valid_l2_ramp", "valid_recon_smoothed", "seconds", "lr"]


def history(columns, epochs=6):
    rng = np.random.default_rng(0)
    return pd.DataFrame({c: np.arange(1, epochs + 1) if c == "epoch" else rng.uniform(0.5, 1.0, epochs) for c in columns})


def test_history_panels_group_every_logged_column():
    panels = dict(run_figures.history_panels(LFADS_HISTORY))
    assert list(panels) == ["loss", "recon", "kl_ic", "kl_co", "l2", "ramps", "learning rate"]
    assert panels["loss"] == ["train_loss", "valid_loss"]
    assert panels["recon"] == ["train_recon", "valid_recon", "valid_recon_smoothed"]
    assert panels["ramps"] == ["train_kl_ramp", "train_l2_ramp"] and panels["learning rate"] == ["lr"]


def test_history_panels_of_a_plain_history_and_a_smoothed_loss():
    assert run_figures.history_panels(["epoch", "train_loss", "valid_loss", "seconds"]) == [
        ("loss", ["train_loss", "valid_loss"])]
    panels = run_figures.history_panels(["epoch", "train_loss", "valid_loss", "valid_loss_smoothed", "valid_sv_nll"])
    assert panels == [("loss", ["train_loss", "valid_loss", "valid_loss_smoothed"]), ("sv_nll", ["valid_sv_nll"])]


def test_training_curves_draw_one_panel_per_group():
    table = history(LFADS_HISTORY)
    fig = run_figures.plot_training_curves(table, "run")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "recon", "kl_ic", "kl_co", "l2", "ramps", "learning rate"]
    recon = fig.axes[1]
    assert len(recon.get_lines()) == 3
    np.testing.assert_allclose(recon.get_lines()[1].get_ydata(), table["valid_recon"])
    np.testing.assert_allclose(recon.get_lines()[1].get_xdata(), table["epoch"])
    assert len({round(ax.get_position().x0, 3) for ax in fig.axes}) == 3  # 7 panels: rows of 3


def test_training_curves_leave_out_constant_panels_and_name_their_value():
    table = history(LFADS_HISTORY).assign(train_l2=0.0, valid_l2=0.0, lr=1e-3)
    fig = run_figures.plot_training_curves(table, "run")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "recon", "kl_ic", "kl_co", "ramps"]
    assert "constant, not drawn: l2 = 0, learning rate = 0.001" in fig._suptitle.get_text()


def test_an_r2_panel_starting_far_below_zero_keeps_its_later_epochs_readable():
    table = history(["epoch", "train_loss", "valid_loss", "valid_rate_r2"]).assign(
        valid_rate_r2=[-170.0, -5.0, 0.2, 0.5, 0.7, 0.8])
    rate = run_figures.plot_training_curves(table, "run").axes[1]
    assert rate.get_ylim()[0] == -1.0 and rate.get_ylim()[1] > 0.8
    assert rate.get_title() == "rate_r2 (axis from -1; lowest -170)"
    within = run_figures.plot_training_curves(table.assign(valid_rate_r2=[-0.5, 0.1, 0.2, 0.5, 0.7, 0.8]), "run")
    assert within.axes[1].get_title() == "rate_r2" and within.axes[1].get_ylim()[0] < -0.5


# --- the plot script's subcommands on files ---


def load_script():
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("plot_figure_under_test", REPO / "scripts" / "plot_figure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLOT_FIGURE = load_script()


def run_plot(monkeypatch, *args):
    """Run scripts/plot_figure.py in this process; returns its exit status (0 when it returns)."""
    monkeypatch.setattr(sys, "argv", ["plot_figure.py", *map(str, args)])
    try:
        PLOT_FIGURE.main()
    except SystemExit as done:
        return done.code
    return 0


@pytest.fixture
def run_files(tmp_path):
    """A binned dataset with truth, conditions and an aligned window, and an LFADS run on it."""
    rng = np.random.default_rng(0)
    shapes = {"train": 6, "eval": 4}
    data = {}
    for split, n in shapes.items():
        for group, units in (("heldin", 5), ("heldout", 2)):
            data[f"{split}_true_rates_{group}"] = rng.uniform(0.1, 1.0, (n, N_BINS, units))
            data[f"{split}_spikes_{group}"] = rng.poisson(data[f"{split}_true_rates_{group}"]).astype(float)
        data[f"{split}_cond_idx"] = [np.arange(0, n, 2), np.arange(1, n, 2)]
    spec = {"name": "toy", "window": {"align_field": "move_onset_time", "offsets_ms": WINDOW_MS}}
    binned = tmp_path / "data.h5"
    write_binned(binned, data, {"dataset": "toy_20ms", "bin_width_s": BIN_S, "phase": "val", "spec": spec})
    output = {f"{split}_rates_{group}": data[f"{split}_true_rates_{group}"] * 1.1 for split in shapes
              for group in ("heldin", "heldout")}
    for split, n in shapes.items():
        output[f"latents/{split}_factors"] = rng.normal(size=(n, N_BINS, 4))
        output[f"latents/{split}_inferred_inputs"] = rng.normal(size=(n, N_BINS, 2))
        output[f"latents/{split}_ic_mean"] = rng.normal(size=(n, 3))
    run = tmp_path / "runs" / "toy_20ms" / "lfads" / "seed0"
    attrs = {"kind": "lfads", "model": "lfads", "dataset": "toy_20ms", "seed": 0, "model_params": {"co_dim": 2}}
    write_model_output(run / "output.h5", output, attrs)
    history(LFADS_HISTORY).to_csv(run / "history.csv", index=False)
    pd.DataFrame({"generation": [1, 1, 2, 2], "worker": [0, 1, 0, 1], "epoch": [25, 25, 50, 50],
                  "score": [0.40, 0.42, 0.39, 0.38], "copied_from": [None, None, None, 0],
                  "learning_rate": [4e-3, 4e-3, 4e-3, 3.5e-3], "kl_ic_scale": [1e-6, 1e-4, 1e-6, 1.2e-6]}
                 ).to_csv(run / "population.csv", index=False)  # an AutoLFADS search's record
    return binned, run / "output.h5"


@pytest.mark.parametrize("figure", ["rates-vs-truth", "factors", "inferred-inputs", "training-curves", "population-search"])
def test_plot_script_draws_each_run_figure(monkeypatch, tmp_path, run_files, figure):
    binned, output = run_files
    png = tmp_path / "figures" / f"{figure}.png"
    data = [] if figure in ("training-curves", "population-search") else ["--data", binned]
    assert run_plot(monkeypatch, figure, *data, "--output", output, "--out", png) == 0
    assert png.stat().st_size > 1000 and png.with_suffix(".pdf").stat().st_size > 1000


def drop(path, key):
    with h5py.File(path, "a") as f:
        del f[key]


@pytest.mark.parametrize(
    ("figure", "dropped", "named"),
    [
        ("rates-vs-truth", ("data", "eval_true_rates_heldin"), "eval_true_rates_heldin"),
        ("rates-vs-truth", ("output", "eval_rates_heldin"), "eval_rates_heldin"),
        ("factors", ("output", "latents/eval_factors", "latents/train_factors"), "latents/eval_factors"),
        ("inferred-inputs", ("output", "latents/eval_inferred_inputs", "latents/train_inferred_inputs"),
         "latents/eval_inferred_inputs"),
    ],
)
def test_a_missing_key_stops_naming_the_file_and_the_key(monkeypatch, capsys, tmp_path, run_files, figure, dropped,
                                                         named):
    binned, output = run_files
    where, *keys = dropped
    path = binned if where == "data" else output
    for key in keys:
        drop(path, key)
    png = tmp_path / "figure.png"
    assert run_plot(monkeypatch, figure, "--data", binned, "--output", output, "--out", png) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {path}: field '{named}': missing")
    assert not png.exists()


def test_factors_fall_back_to_the_training_split(monkeypatch, tmp_path, run_files):
    binned, output = run_files
    drop(output, "latents/eval_factors")
    assert run_plot(monkeypatch, "factors", "--data", binned, "--output", output,
                    "--out", tmp_path / "f.png") == 0


def test_training_curves_without_history_name_it(monkeypatch, capsys, tmp_path, run_files):
    _, output = run_files
    (output.parent / "history.csv").unlink()
    assert run_plot(monkeypatch, "training-curves", "--output", output, "--out", tmp_path / "c.png") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {output.parent / 'history.csv'}: field '<file>': cannot read")


def test_window_start_and_event_from_the_spec():
    spec = {"window": {"align_field": "move_onset_time", "offsets_ms": [-250, 450]}}
    assert PLOT_FIGURE._window_start({"spec": spec}) == (-250.0, "move onset")
    dmfc = {"window": {"align_field": "go_time", "offsets_ms": None}}
    assert PLOT_FIGURE._window_start({"spec": dmfc}) == (None, "window start")
    assert PLOT_FIGURE._window_start({}) == (None, "window start")


# --- the figures the workflow plans ---

LFADS_STUDY = {
    "models": {"lfads": {"kind": "lfads", "epochs": 2, "batch_size": 8}, "lfads_auto": {"kind": "lfads", "co_dim": 0}},
    "nlb_study": {"datasets": ["reaching", "mc_maze"], "bin_sizes_ms": [20], "models": ["smoothing", "lfads", "lfads_auto"],
                  "seeds": [0, 1]},
    "attractor_study": None,
}


def test_lfads_offers_rates_only_with_true_rates_and_inputs_only_with_a_controller():
    lfads = get_kind("lfads")
    everything = ["training_curves", "lfads_factors", "lfads_rates", "lfads_inputs"]
    assert lfads.run_figures({"co_dim": 4}, has_true_rates=True) == everything
    assert lfads.run_figures({"co_dim": 0}, has_true_rates=False) == ["training_curves", "lfads_factors"]
    assert get_kind("smoothing").run_figures({}, has_true_rates=True) == []


def test_workflow_plans_the_run_figures_each_kind_offers_for_the_first_seed(tmp_path):
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=LFADS_STUDY)
    # 2 datasets × 2 LFADS models, first seed only: training curves and factors of each (4 + 4), rates on the
    # simulated reaching data only (2), inputs of `lfads` only (co_dim 4; lfads_auto has none: 2); smoothing
    # offers none
    assert jobs["figure_per_run"] == 4 + 4 + 2 + 2
    assert jobs["train"] == 2 * 3 * 2


def test_smoothing_alone_gets_no_run_figures(tmp_path):
    config = {**LFADS_STUDY, "nlb_study": {**LFADS_STUDY["nlb_study"], "models": ["smoothing"]}}
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=config)
    assert "figure_per_run" not in jobs
    assert jobs["figure_nlb_metrics"] == 1


def test_a_run_figure_target_splits_dataset_and_model_names_with_underscores(tmp_path):
    target = "results/figures/lfads_factors_mc_maze_20ms_lfads_auto.png"
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=LFADS_STUDY, targets=[target])
    assert jobs["figure_per_run"] == 1 and jobs["train"] == 1 and jobs["bin_nwb"] == 1
