"""SBTT experiments (Zhu et al. 2021): the naive zero-fill alternative, SBTT beating it at low bandwidth,
calcium metrics that never treat dF/F as counts, and the sbtt/two-photon studies through the workflow."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from latentdyn.errors import ConfigError
from latentdyn.data.masks import apply_bandwidth, bandwidth_attrs
from latentdyn.data.prepare import prepare
from latentdyn.data.sbtt_lorenz import make_sbtt_lorenz_dataset
from latentdyn.data.subsets import keep_train_trials
from latentdyn.errors import InputError
from latentdyn.data.two_photon import make_two_photon_datasets
from latentdyn.metrics.calcium import band_edges, deconvolve
from latentdyn.metrics.evaluate import evaluate_run
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.models.augmentations import entry_folds
from latentdyn.models.components import poisson_nll_elementwise
from latentdyn.models.kinds import resolve_model
from latentdyn.models.pipeline import load_initial_weights, train_and_predict
from latentdyn.models.sequential_autoencoder.model import build
from latentdyn.training.contract import Progress
from latentdyn.training.trainer import batch_from
from workflow_api import TINY_CONFIG, run_workflow

SMALL_LORENZ = {"n_conditions": 8, "trials_per_condition": 10, "n_bins": 30, "n_train": 64}


def sbtt_params(unobserved="skip", **overrides):
    return resolve_model("sbtt", {
        "kind": "sequential_autoencoder", "dynamics": "gru", "latent_size": 16, "encoder_size": 16, "dropout": 0.05,
        "learning_rate": 1e-2, "weight_decay": 1e-4, "batch_size": 16, "epochs": 2, "select": "best",
        "unobserved": unobserved, **overrides,
    })


@pytest.fixture(scope="module")
def lorenz():
    return make_sbtt_lorenz_dataset(**SMALL_LORENZ, seed=3)


def masked(lorenz, bandwidth):
    arrays, attrs = lorenz
    return apply_bandwidth(arrays, bandwidth, seed=0), bandwidth_attrs(attrs, bandwidth, 0)


# --- the naive alternative: one switch in data preparation -------------------------------------------

def test_zero_fill_replaces_unobserved_entries_in_input_and_target_only(lorenz):
    arrays, attrs = masked(lorenz, 5)
    skip = prepare(arrays, attrs, valid_fraction=0.25, seed=0)
    filled = prepare(arrays, attrs, valid_fraction=0.25, seed=0, unobserved="zero_fill")
    for split in ("train", "valid"):
        a, b = getattr(skip, split), getattr(filled, split)
        assert np.isnan(a.encoder_input).mean() == pytest.approx(24 / 29, abs=1e-6)
        assert not np.isnan(b.encoder_input).any() and not np.isnan(b.target).any()
        observed = ~np.isnan(a.target)
        assert np.array_equal(a.target[observed], b.target[observed]) and np.all(b.target[~observed] == 0)
        assert np.array_equal(a.truth["true_rates_heldin"], b.truth["true_rates_heldin"])
    assert not np.isnan(filled.splits["eval"].encoder_input).any()
    assert np.isnan(arrays["train_spikes_heldin"]).any()  # the dataset itself is untouched
    with pytest.raises(ValueError, match="unobserved"):
        prepare(arrays, attrs, valid_fraction=0.25, seed=0, unobserved="impute")


def test_zero_fill_loss_counts_the_filled_entries_and_skip_ignores_them(lorenz):
    arrays, attrs = masked(lorenz, 3)
    params = sbtt_params()
    losses, batches = {}, {}
    for mode in ("skip", "zero_fill"):
        prepared = prepare(arrays, attrs, valid_fraction=0.25, seed=0, unobserved=mode)
        torch.manual_seed(0)
        model = build(params, prepared.shapes).eval()
        batches[mode] = batch_from(prepared.train, "cpu")
        with torch.no_grad():
            losses[mode] = model.validation_step(batches[mode], Progress(0, 1)).loss.item()
            log_rates, _ = model(batches[mode].encoder_input)
    target = batches["skip"].target
    observed = ~torch.isnan(target)
    nll = poisson_nll_elementwise(log_rates, torch.nan_to_num(target))  # same model, same (zeroed) input
    assert losses["skip"] == pytest.approx(nll[observed].mean().item(), rel=1e-5)
    assert losses["zero_fill"] == pytest.approx(nll.mean().item(), rel=1e-5)  # every entry, zeros included
    assert nll.numel() > observed.sum().item() * 5


def test_skip_and_zero_fill_are_identical_on_fully_observed_data(lorenz, tmp_path, one_thread):
    arrays, attrs = lorenz
    outputs = {}
    for mode in ("skip", "zero_fill"):
        outputs[mode], _ = train_and_predict(sbtt_params(mode), arrays, attrs, run_dir=tmp_path / mode, seed=1,
                                             device="cpu")
    assert outputs["skip"].keys() == outputs["zero_fill"].keys()
    for key in outputs["skip"]:
        np.testing.assert_array_equal(outputs["skip"][key], outputs["zero_fill"][key])
    skip, filled = (pd.read_csv(tmp_path / mode / "history.csv") for mode in ("skip", "zero_fill"))
    assert np.array_equal(skip["train_loss"], filled["train_loss"])


@pytest.fixture
def one_thread():
    """One torch thread, as a training job has (config `threads`): small models run slower on more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sbtt_beats_the_naive_model_at_low_bandwidth(tmp_path, one_thread):
    """A small SBTT model on masked synthetic data recovers the true rates (all entries, the masked ones
    included); the same model fit to zero-filled data learns rates scaled down by the bandwidth."""
    arrays, attrs = make_sbtt_lorenz_dataset(n_conditions=10, trials_per_condition=20, n_bins=30, n_train=160, seed=0)
    arrays, attrs = apply_bandwidth(arrays, 5, seed=0), bandwidth_attrs(attrs, 5, 0)  # 24 of 29 channels dropped
    r2 = {}
    for mode in ("skip", "zero_fill"):
        params = sbtt_params(mode, latent_size=32, encoder_size=32, epochs=40, batch_size=16)
        output, _ = train_and_predict(params, arrays, attrs, run_dir=tmp_path / mode, seed=0, device="cpu")
        r2[mode] = rate_r2(output["eval_rates_heldin"], arrays["eval_true_rates_heldin"])
    assert r2["skip"] > 0.25 and r2["skip"] > r2["zero_fill"] + 0.5, r2  # measured: 0.35 vs -1.0


# --- held-out-entry validation: a checkpoint monitor that copying the input cannot lower -----------------

def test_entry_folds_split_each_trial_into_equal_disjoint_sets_fixed_by_trial_and_seed():
    shape = (50, 29)
    folds = entry_folds(torch.arange(40), shape, 5, seed=7)
    assert folds.shape == (40, *shape) and folds.min() == 0 and folds.max() == 4
    counts = torch.bincount(folds.flatten(), minlength=5) / folds.numel()
    assert torch.allclose(counts, torch.full((5,), 0.2), atol=0.005), counts
    same_trials_reordered = entry_folds(torch.tensor([39, 3]), shape, 5, seed=7)
    assert torch.equal(same_trials_reordered, folds[[39, 3]])
    assert (entry_folds(torch.arange(40), shape, 5, seed=8) != folds).float().mean() > 0.7


def test_held_out_entry_nll_scores_every_entry_once_and_exposes_a_copying_map(lorenz):
    """Ground truth: on masked Lorenz data, a map that copies its input to its output beats the true rates
    on the ordinary validation NLL but not on the held-out-entry NLL (README §9); the true rates, which
    ignore the input, get the same held-out-entry NLL as ordinary NLL, since every observed entry is
    scored exactly once."""
    arrays, attrs = masked(lorenz, 3)
    prepared = prepare(arrays, attrs, valid_fraction=0.25, seed=0)
    batch = batch_from(prepared.valid, "cpu")
    true_log_rates = torch.log(batch.truth["true_rates_heldin"].float())
    maps = {
        "truth": lambda spikes: (true_log_rates, None),
        "copy": lambda spikes: (torch.log(torch.nan_to_num(spikes, nan=0.0) + 0.01), None),
    }
    nll = {}
    for name, forward in maps.items():
        model = build(sbtt_params(sv_folds=5), prepared.shapes).eval()
        model.forward = forward
        terms = model.validation_step(batch, Progress(0, 1)).terms
        nll[name] = {key: float(value) for key, value in terms.items()}
    assert nll["truth"]["sv_nll"] == pytest.approx(nll["truth"]["recon"], rel=1e-6)
    assert nll["copy"]["recon"] < nll["truth"]["recon"] - 0.1, nll
    assert nll["copy"]["sv_nll"] > nll["truth"]["sv_nll"] + 0.5, nll


def test_the_best_checkpoint_is_chosen_on_held_out_entries_when_monitored(lorenz, tmp_path, one_thread):
    arrays, attrs = masked(lorenz, 5)
    params = sbtt_params(sv_folds=3, monitor="valid_sv_nll", epochs=6)
    _, output_attrs = train_and_predict(params, arrays, attrs, run_dir=tmp_path, seed=0, device="cpu")
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["valid_sv_nll"].notna().all() and not np.allclose(history["valid_sv_nll"], history["valid_recon"])
    best = int(history["valid_sv_nll"].idxmin()) + 1
    assert output_attrs["checkpoint"] == f"best (epoch {best} of 6)"
    without = build(sbtt_params(), prepare(arrays, attrs, valid_fraction=0.25, seed=0).shapes)
    assert without.sv_folds is None
    with pytest.raises(ConfigError, match="sv_folds.*minimum of 2"):
        sbtt_params(sv_folds=1)
    with pytest.raises(ConfigError, match="models.sbtt.monitor.*'sv_folds' is set"):
        sbtt_params(monitor="valid_sv_nll")  # a user who switches sv_folds off but keeps the paper's monitor


# --- experiment 4: pretraining on a few fully observed trials --------------------------------------------

def test_trial_subsets_are_nested_and_keep_conditions_and_other_splits(lorenz):
    arrays, _ = lorenz
    small, large = (keep_train_trials(arrays, n, seed=0) for n in (10, 40))
    ids = {n: subset["train_trial_ids"] for n, subset in ((10, small), (40, large))}
    assert len(ids[10]) == 10 and len(ids[40]) == 40 and set(ids[10]) <= set(ids[40])
    assert np.all(np.diff(ids[40]) > 0)  # original order kept
    for key in ("train_spikes_heldin", "train_true_rates_heldin"):
        rows = np.searchsorted(arrays["train_trial_ids"], ids[40])
        np.testing.assert_array_equal(large[key], arrays[key][rows])
    for condition, (old, new) in enumerate(zip(arrays["train_cond_idx"], large["train_cond_idx"])):
        kept_ids = large["train_trial_ids"][new]  # re-indexed rows still point at that condition's trials
        assert set(kept_ids) == set(arrays["train_trial_ids"][old]) & set(ids[40]), condition
    assert sum(len(idx) for idx in large["train_cond_idx"]) == 40
    assert len({len(idx) > 0 for idx in large["train_cond_idx"]}) == 1  # a random draw reaches every condition
    np.testing.assert_array_equal(large["eval_spikes_heldin"], arrays["eval_spikes_heldin"])
    with pytest.raises(InputError, match="cannot keep 65 of its 64 training trials"):
        keep_train_trials(arrays, 65, seed=0)


def test_a_run_starts_from_pretrained_weights_and_is_identified_by_them(lorenz, tmp_path, one_thread):
    arrays, attrs = lorenz
    sparse, sparse_attrs = masked(lorenz, 3)
    pretrained_output, pretrained_attrs = train_and_predict(sbtt_params(), arrays, attrs, run_dir=tmp_path / "full",
                                                            seed=0, device="cpu")
    weights = tmp_path / "full" / "model.pt"
    prepared = prepare(sparse, sparse_attrs, valid_fraction=0.25, seed=0)
    fresh = build(sbtt_params(), prepared.shapes)
    assert load_initial_weights(fresh, weights) == pretrained_attrs["identity"]
    saved = torch.load(weights, weights_only=False)["model"]
    assert all(torch.equal(value, saved[name]) for name, value in fresh.state_dict().items())
    runs = {}
    for name, init in (("scratch", None), ("adapted", weights)):
        runs[name] = train_and_predict(sbtt_params(), sparse, sparse_attrs, run_dir=tmp_path / name, seed=0,
                                       device="cpu", init_from=init)
    assert runs["scratch"][1]["identity"] != runs["adapted"][1]["identity"]
    assert runs["adapted"][1]["initialised_from"] == str(weights) and "initialised_from" not in runs["scratch"][1]
    first_losses = {name: pd.read_csv(tmp_path / name / "history.csv")["train_loss"].iloc[0] for name in runs}
    assert first_losses["adapted"] < first_losses["scratch"]  # it starts where the pretrained model ended
    with pytest.raises(InputError, match="model.pt: field 'model': weights do not fit this model"):
        train_and_predict(sbtt_params(latent_size=8), sparse, sparse_attrs, run_dir=tmp_path / "other", seed=0,
                          device="cpu", init_from=weights)
    smoothing = resolve_model("smoothing", {"kind": "smoothing", "kernel_sd_ms": 50})
    with pytest.raises(InputError, match="not trained by gradient"):
        train_and_predict(smoothing, sparse, sparse_attrs, run_dir=tmp_path / "smooth", seed=0, device="cpu",
                          init_from=weights)


def test_dynamics_pretrained_on_few_full_trials_help_sbtt_at_low_bandwidth(tmp_path, one_thread):
    """Experiment 4 at small scale: SBTT at 3 of 29 channels from dynamics pretrained on 64 fully observed
    trials recovers the true rates better than the same SBTT training from a random start."""
    arrays, attrs = make_sbtt_lorenz_dataset(n_conditions=8, trials_per_condition=20, n_bins=30, n_train=128, seed=1)
    full, full_attrs = keep_train_trials(arrays, 64, seed=0), {**attrs, "dataset": "full64"}
    train_and_predict(sbtt_params(latent_size=24, encoder_size=24, epochs=150, batch_size=16), full, full_attrs,
                      run_dir=tmp_path / "full", seed=0, device="cpu")
    sparse, sparse_attrs = apply_bandwidth(arrays, 3, seed=0), bandwidth_attrs(attrs, 3, 0)
    adapt = sbtt_params(latent_size=24, encoder_size=24, epochs=15, batch_size=16)
    r2 = {}
    for name, init in (("scratch", None), ("pretrained", tmp_path / "full" / "model.pt")):
        output, _ = train_and_predict(adapt, sparse, sparse_attrs, run_dir=tmp_path / name, seed=0, device="cpu",
                                      init_from=init)
        r2[name] = rate_r2(output["eval_rates_heldin"], sparse["eval_true_rates_heldin"])
    assert r2["pretrained"] > r2["scratch"] + 0.1, r2  # measured: 0.31 vs 0.10


# --- calcium metrics -----------------------------------------------------------------------------------

SMALL_2P = {"n_conditions": 4, "trials_per_condition": 5, "n_neurons": 12, "n_frames": 10, "calcium_burn_in_s": 1.0}


@pytest.fixture(scope="module")
def two_photon():
    return make_two_photon_datasets(**SMALL_2P, seed=2)


def test_deconvolution_inverts_a_first_order_indicator():
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 0.05, size=(3, 40, 4))
    decay, amplitude, bin_s, tau = np.exp(-0.01 / 0.5), 0.2, 0.01, 0.5
    calcium = np.zeros((3, 41, 4))
    for t in range(40):
        calcium[:, t + 1] = decay * calcium[:, t] + amplitude * rates[:, t]
    np.testing.assert_allclose(deconvolve(calcium, bin_s, tau, amplitude), rates, atol=1e-12)
    assert band_edges(1 / 90, 30.0) == [0.0, 3.75, 7.5, 15.0, 45.0]


def expected_calcium(rates, bin_s, tau=0.5, amplitude=0.2):
    """Mean dF/F of a first-order indicator driven by `rates` (spikes per bin), read after each bin's spikes
    at the next bin: mu_(t+1) = d mu_t + A r_t."""
    decay = np.exp(-bin_s / tau)
    mean = np.zeros_like(rates, dtype=np.float64)
    for t in range(rates.shape[1] - 1):
        mean[:, t + 1] = decay * mean[:, t] + amplitude * rates[:, t]
    return mean


def test_rates_recovered_from_an_exact_mean_calcium_at_subframe_and_frame_resolution(two_photon):
    sub, sub_attrs = two_photon["subframe"]
    frame, frame_attrs = two_photon["frame"]
    mean = expected_calcium(sub["eval_true_rates_heldin"], sub_attrs["bin_width_s"])
    assert evaluate_run(sub, sub_attrs, {"eval_rates_heldin": mean})["subframe_rate_r2"] == pytest.approx(1.0)
    frame_rates = frame["eval_true_rates_heldin"]
    frame_mean = expected_calcium(frame_rates, frame_attrs["bin_width_s"])
    metrics = evaluate_run(frame, frame_attrs, {"eval_rates_heldin": frame_mean})
    k, n_bins = frame_attrs["subframe_bins"], (frame_rates.shape[1] - 1) * frame_attrs["subframe_bins"]
    spread = np.repeat(frame_rates / k, k, axis=1)[:, :n_bins]  # each frame's spikes spread evenly over it
    assert metrics["subframe_rate_r2"] == pytest.approx(rate_r2(spread, sub["eval_true_rates_heldin"][:, :n_bins]))
    assert metrics["subframe_rate_r2"] < 0.99


def test_calcium_runs_get_calcium_metrics_and_never_poisson_ones(two_photon):
    keys = {}
    for resolution in ("subframe", "frame"):
        arrays, attrs = two_photon[resolution]
        truth = arrays["eval_true_calcium_heldin"]
        output = {"eval_rates_heldin": truth, "train_rates_heldin": arrays["train_true_calcium_heldin"]}
        metrics = evaluate_run(arrays, attrs, output)
        assert "nll" not in metrics and "rate_r2" not in metrics
        assert metrics["calcium_r2"] == pytest.approx(1.0)
        keys[resolution] = set(metrics)
    assert keys["subframe"] == keys["frame"]  # same sub-frame metrics for both resolutions
    assert {"subframe_calcium_r2", "subframe_rate_r2", "subframe_rate_diff_r2", "subframe_rate_r2_15-45hz"} <= keys["frame"]


def test_frame_predictions_are_repeated_over_their_subframe_bins(two_photon):
    sub, sub_attrs = two_photon["subframe"]
    frame, frame_attrs = two_photon["frame"]
    k = frame_attrs["subframe_bins"]
    frame_mean = frame["eval_true_calcium_heldin"]
    from_frame = evaluate_run(frame, frame_attrs, {"eval_rates_heldin": frame_mean})
    repeated = np.repeat(frame_mean, k, axis=1)
    from_sub = evaluate_run(sub, sub_attrs, {"eval_rates_heldin": repeated})
    assert from_frame["subframe_calcium_r2"] == pytest.approx(from_sub["subframe_calcium_r2"])
    assert from_frame["calcium_r2"] == pytest.approx(1.0)
    assert from_frame["subframe_calcium_r2"] < 0.999  # exact at the frame's reads, a staircase between them


# --- config and workflow --------------------------------------------------------------------------------

TINY_SBTT = {
    "sbtt_lorenz": {"n_conditions": 4, "trials_per_condition": 6, "n_bins": 12, "n_train": 16},
    "two_photon": {"n_conditions": 3, "trials_per_condition": 5, "n_neurons": 8, "n_frames": 8,
                   "calcium_burn_in_s": 1.0},
    "models": {
        "sbtt": {"latent_size": 4, "encoder_size": 4, "epochs": 2, "batch_size": 8, "log_every": 1},
        "sbtt_naive": {"latent_size": 4, "encoder_size": 4, "epochs": 2, "batch_size": 8, "log_every": 1},
        "lfads_calcium_tiny": {"kind": "lfads", "reconstruction": "gaussian", "co_dim": 0, "ic_enc_dim": 4,
                               "ic_dim": 4, "gen_dim": 4, "fac_dim": 2, "batch_size": 8, "epochs": 2,
                               "early_stopping": None, "posterior_samples": 2},
    },
    "attractor_study": None,
    "nlb_study": None,
    "sbtt_study": {"datasets": ["sbtt_lorenz"], "bandwidths": [5, 2], "models": ["sbtt", "sbtt_naive"], "seeds": [0]},
    "sbtt_pretraining_study": {"dataset": "sbtt_lorenz", "bandwidths": [2], "full_trials": [8], "model": "sbtt",
                               "seeds": [0]},
    "two_photon_study": {"models": ["lfads_calcium_tiny"], "seeds": [0]},
}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"sbtt_study": {"bandwidths": [6]}}, "sbtt_study.bandwidths"),
        ({"sbtt_study": {"dataset_bandwidths": {"sbtt_lorenz": [4]}}}, "sbtt_study.dataset_bandwidths.sbtt_lorenz"),
        ({"sbtt_study": {"models": ["nope"]}}, "sbtt_study.models"),
        ({"two_photon_study": {"models": ["sbtt"]}}, "two_photon_study.models"),
        ({"two_photon_study": {"models": ["lfads"]}}, "two_photon_study.models"),
        ({"two_photon_study": {"resolutions": ["line"]}}, "resolutions"),
        ({"sbtt_pretraining_study": {"model": "sbtt_naive"}}, "sbtt_pretraining_study.model"),
        ({"sbtt_pretraining_study": {"model": "smoothing"}}, "sbtt_pretraining_study.model"),
        ({"sbtt_pretraining_study": {"bandwidths": [6]}}, "sbtt_pretraining_study.bandwidths"),
        ({"sbtt_pretraining_study": {"full_trials": [0]}}, "sbtt_pretraining_study.full_trials"),
    ],
)
def test_bad_sbtt_config_is_named(tmp_path, override, named):
    with pytest.raises(ConfigError) as error:
        run_workflow(tmp_path, config=override)
    assert named in str(error.value) and len(str(error.value).splitlines()) == 1


def test_tiny_sbtt_studies_plan(tmp_path):
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=TINY_SBTT)
    # pretraining: sbtt on sbtt_lorenz_full8, then sbtt-P8 on bw2 (sbtt from scratch on bw2 is the sbtt study's)
    assert jobs == {"simulate_sbtt_lorenz": 1, "mask_bandwidth": 2, "simulate_two_photon": 1, "train": 4 + 2 + 2,
                    "predict": 6 + 1, "evaluate": 6 + 1, "collect_metrics": 3, "render_table": 3, "figure_sbtt_bandwidth": 1,
                    "figure_sbtt_two_photon": 1, "keep_full_trials": 1, "figure_sbtt_pretraining": 1, "all": 1}


def test_pretrained_runs_need_a_masked_dataset_and_a_gradient_trained_model(tmp_path):
    for target, problem in (("sbtt_lorenz/sbtt-P8", "needs a masked dataset|adapts pretrained dynamics to a masked"),
                            ("sbtt_lorenz_bw2/smoothing-P8", "not trained by gradient")):
        with pytest.raises(Exception, match=problem):
            run_workflow(tmp_path, [TINY_CONFIG], config=TINY_SBTT,
                         targets=[f"results/runs/{target}/seed0/output.h5"])


def test_tiny_sbtt_studies_run(tmp_path):
    run_workflow(tmp_path, [TINY_CONFIG], config=TINY_SBTT, executor="local")
    tables = tmp_path / "results" / "tables"
    sbtt = pd.read_csv(tables / "sbtt_study.csv")
    assert sorted(sbtt["bandwidth"]) == [2, 2, 5, 5] and set(sbtt["model"]) == {"sbtt", "sbtt_naive"}
    assert sbtt["dropped_fraction"].round(3).tolist().count(round(1 - 2 / 29, 3)) == 2
    assert sbtt["rate_r2"].notna().all()
    two_photon = pd.read_csv(tables / "two_photon_study.csv")
    assert sorted(two_photon["resolution"]) == ["frame", "subframe"]
    assert "nll" not in two_photon.columns and two_photon[["subframe_rate_r2", "latent_r2"]].notna().all().all()
    run = tmp_path / "results" / "runs" / "sbtt_lorenz_bw2" / "sbtt_naive" / "seed0"
    assert json.loads((run / "metrics.json").read_text())["bandwidth"] == 2
    pretraining = pd.read_csv(tables / "sbtt_pretraining_study.csv")
    assert sorted(pretraining["model"]) == ["sbtt", "sbtt-P8"] and pretraining["rate_r2"].notna().all()
    adapted = tmp_path / "results" / "runs" / "sbtt_lorenz_bw2" / "sbtt-P8" / "seed0" / "output.h5"
    import h5py

    with h5py.File(adapted) as f:
        assert f.attrs["initialised_from"] == "results/runs/sbtt_lorenz_full8/sbtt/seed0/model.pt"
    for figure in ("sbtt_rate_r2_vs_bandwidth", "sbtt_two_photon", "sbtt_pretraining"):
        assert (tmp_path / "results" / "figures" / f"{figure}.png").stat().st_size > 1000


def test_bandwidth_figure_draws_each_source_and_metric_with_the_published_curve(tmp_path):
    from latentdyn.plots.common import save_figure
    from latentdyn.plots.sbtt import PUBLISHED_RATE_R2, plot_bandwidth_curves

    rows = [
        {"dataset": f"{source}_bw{b}", "model": model, "seed": seed, "bandwidth": b, "dropped_fraction": 1 - b / n,
         "rate_r2": 0.5 - (model == "sbtt_naive") * (1 - b / n) * 2, "co-bps": 0.2 * b / n, "vel R2": 0.6}
        for source, n, bandwidths in (("sbtt_lorenz", 29, (29, 5, 2)), ("mc_maze_20ms", 137, (137, 24)))
        for b in bandwidths for model in ("sbtt", "sbtt_naive") for seed in (0, 1)
    ]
    table = pd.DataFrame(rows)
    table.loc[table["dataset"].str.startswith("sbtt"), ["co-bps", "vel R2"]] = np.nan
    rate = plot_bandwidth_curves(table, ["rate_r2"])
    assert len(rate.axes) == 2  # one panel per source with rate R²
    assert [ax.get_title().split(" ")[0] for ax in rate.axes] == ["sbtt_lorenz", "mc_maze_20ms"]  # none skipped
    lorenz = rate.axes[0]
    assert "SBTT, published" in [line.get_label() for line in lorenz.get_lines()]
    published = next(line for line in lorenz.get_lines() if line.get_label() == "SBTT, published")
    assert list(published.get_ydata()) == [PUBLISHED_RATE_R2[b] for b in sorted(PUBLISHED_RATE_R2, reverse=True)]
    clipped = next(text for text in lorenz.texts if text.get_text() == f"{0.5 - (1 - 2 / 29) * 2:.2g}")
    assert clipped.xy[1] == -1.0  # drawn at the floor, labelled with its true value (-1.4)
    assert "below -1" in lorenz.get_title()
    nlb = plot_bandwidth_curves(table, ["co-bps", "vel R2"])
    assert len(nlb.axes) == 2 and nlb.axes[0].get_title().startswith("mc_maze_20ms (large: mean of 2 seeds")
    save_figure(nlb, tmp_path / "nlb.png")
    assert (tmp_path / "nlb.pdf").stat().st_size > 1000


def test_bandwidth_figure_draws_each_seed_clipped_seeds_as_triangles_and_one_seed_alone():
    from matplotlib.collections import PathCollection

    from latentdyn.plots.sbtt import plot_bandwidth_curves

    rows = [{"dataset": f"sbtt_lorenz_bw{b}", "model": "sbtt", "seed": seed, "bandwidth": b,
             "dropped_fraction": 1 - b / 29, "rate_r2": value}
            for b, values in ((29, (0.9, 0.8)), (2, (-3.0, 0.0))) for seed, value in enumerate(values)]
    ax = plot_bandwidth_curves(pd.DataFrame(rows), ["rate_r2"]).axes[0]
    dots = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(len(d) for d in dots) == [1, 3]  # three seeds as dots, the one below -1 as a triangle
    triangle = next(d for d in dots if len(d) == 1)
    assert triangle[0][1] == -1.0
    mean = next(line for line in ax.get_lines() if line.get_label() != "SBTT, published" and len(line.get_xdata()))
    assert sorted(mean.get_ydata()) == pytest.approx([-1.0, 0.85])  # mean -1.5 drawn at the floor
    assert "-1.5" in [text.get_text() for text in ax.texts]

    one = plot_bandwidth_curves(pd.DataFrame([r for r in rows if r["seed"] == 0]), ["rate_r2"]).axes[0]
    assert not [c for c in one.collections if isinstance(c, PathCollection)]  # the value alone, no spread
    assert "one seed" in one.get_title()


def test_pretraining_figure_shows_no_band_from_one_scratch_seed():
    from latentdyn.plots.sbtt import plot_pretraining

    rows = [{"model": model, "seed": 0, "bandwidth": 5, "dropped_fraction": 1 - 5 / 29, "rate_r2": r2}
            for model, r2 in (("sbtt", 0.5), ("sbtt-P10", 0.6), ("sbtt-P100", 0.8))]
    ax = plot_pretraining(pd.DataFrame(rows)).axes[0]
    assert not ax.patches  # no s.d. band
    assert "one seed" in ax.get_title()
    assert any("SBTT from scratch (one seed)" == text.get_text() for text in ax.get_legend().get_texts())
