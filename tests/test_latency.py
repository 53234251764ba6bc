"""Latency study (metrics/latency.py): timing, the kinds' inference entry point, the table, the figure and
the workflow's config checks and plan."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from test_lfads import one_thread  # noqa: F401 (autouse fixture)

from latentdyn.errors import ConfigError
from latentdyn.data.prepare import prepare, split_rates
from latentdyn.metrics import latency
from latentdyn.metrics.latency import COLUMNS, WARMUP_CALLS, quartiles_ms
from latentdyn.metrics.latency_goal import goal_check
from latentdyn.models.kinds import get_kind, latency_kinds, resolve_model
from latentdyn.plots.latency import plot_latency
from workflow_api import REPO, run_workflow
from random_counts import poisson_counts

# Tiny models of both timeable kinds, with dropout, so that eval mode matters
TINY_MODELS = {
    "ndt_small": {"kind": "ndt", "layers": 1, "heads": 2, "ff_dim": 8, "embedding": "linear", "embed_dim": 8},
    "lfads_small": {
        "kind": "lfads", "ic_enc_dim": 8, "ci_enc_dim": 6, "con_dim": 6, "co_dim": 2, "ic_dim": 4, "gen_dim": 10,
        "fac_dim": 3, "posterior_samples": 0,
    },
}


def tiny_models():
    return {name: resolve_model(name, params) for name, params in TINY_MODELS.items()}


def test_quartiles_warm_up_then_time_every_repeat():
    calls = []

    def run():
        calls.append(None)
        time.sleep(0.002 if len(calls) % 2 else 0.02)

    q25, median, q75 = quartiles_ms(run, 8, torch.device("cpu"))
    assert len(calls) == WARMUP_CALLS + 8
    assert 2.0 <= q25 < 10.0 < q75 and q25 <= median <= q75  # half the calls 2 ms, half 20 ms


@pytest.mark.parametrize("name", TINY_MODELS)
def test_infer_rates_are_the_rates_predict_gives_in_eval_mode(name):
    params = tiny_models()[name]
    implementation = get_kind(params["kind"]).implementation()
    arrays = poisson_counts({"train": 10, "eval": 4}, heldout=3)
    prepared = prepare(arrays, {}, valid_fraction=0.2, seed=0)
    torch.manual_seed(0)
    model = implementation.build(params, prepared.shapes)
    predicted = implementation.predict(model, prepared, params, "cpu")  # leaves the model in eval mode
    encoder_input = torch.as_tensor(prepared.splits["eval"].encoder_input)
    with torch.no_grad():
        rates = implementation.infer_rates(model, encoder_input)
        assert torch.equal(implementation.infer_rates(model, encoder_input), rates)
    assert rates.shape == (4, prepared.shapes.n_recon_bins, prepared.shapes.n_output)
    for key, value in split_rates(rates.numpy(), prepared.shapes, "eval").items():
        np.testing.assert_allclose(value, predicted[key], rtol=1e-5, atol=1e-7)


def test_script_writes_every_column_with_finite_times(tmp_path):
    out = tmp_path / "tables" / "latency.csv"
    settings = {"n_heldin": 5, "n_heldout": 3, "bins": [6, 14], "batch": 4, "repeats": 3}
    subprocess.run(
        [sys.executable, REPO / "scripts" / "measure_latency.py", "--models", json.dumps(tiny_models()),
         "--settings", json.dumps(settings), "--device", "cpu", "--out", out],
        check=True, capture_output=True, text=True,
    )
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS and "batch" not in COLUMNS
    for column in ("ms_per_trial", "trials_per_s"):
        assert (table[f"{column}_q25"] <= table[column]).all() and (table[column] <= table[f"{column}_q75"]).all()
    assert len(table) == 4 and set(table["kind"]) == {"ndt", "lfads"} and list(table["bins"]) == [6, 6, 14, 14]
    assert (table[["ms_per_trial", "trials_per_s"]] > 0).all().all()
    assert np.isfinite(table[["ms_per_trial", "trials_per_s"]]).all().all()
    assert (table["max_abs_diff"] == 0.0).all() and (table["throughput_batch"] == 4).all()  # fp32 eager is the reference
    assert set(table["device"]) == {"CPU, 1 thread"}
    assert [p.name for p in out.parent.iterdir()] == ["latency.csv"]  # no temporary file left


def test_a_variant_computing_something_else_never_reaches_the_table(monkeypatch, capsys):
    """A variant is timed only if its rates, at batch 1 and at the throughput batch, match fp32 eager within
    its tolerance: off at batch 1, off only in the batch, or NaN, it is named and left out; half precision
    within its (looser) tolerance stays."""
    errors = {"fp32 eager": (0.0, 0.0), "fp32 off": (0.5, 0.0), "fp32 off in a batch": (0.0, 0.5),
              "fp32 nan": (float("nan"), 0.0), "bf16 close": (0.01, 0.01)}
    monkeypatch.setattr(latency, "variants", lambda kind, device: [
        (name, name, torch.bfloat16 if name.startswith("bf16") else None) for name in errors])

    def runner(mode, dtype, rates, inputs):
        error = errors[mode][0 if len(inputs) == 1 else 1]
        return lambda: rates(inputs) + error * rates(inputs).abs().max()

    monkeypatch.setattr(latency, "make_runner", runner)
    rows = list(latency.measure_latency({"ndt_small": tiny_models()["ndt_small"]}, torch.device("cpu"), 5, 3, [6], 4, 3))
    assert [row["variant"] for row in rows] == ["fp32 eager", "bf16 close"]
    left_out = [line for line in capsys.readouterr().err.splitlines() if "left out" in line]
    assert [line.split(" at 6 bins")[0] for line in left_out] == [
        "note: ndt_small fp32 off", "note: ndt_small fp32 off in a batch", "note: ndt_small fp32 nan"]


def timing_row(kind, variant, ms, difference=0.0, bins=140):
    return {"model": f"{kind}_x", "kind": kind, "variant": variant, "bins": bins, "ms_per_trial": ms,
            "ms_per_trial_q25": 0.9 * ms, "ms_per_trial_q75": 1.2 * ms, "trials_per_s": 8e3 / ms,
            "trials_per_s_q25": 7e3 / ms, "trials_per_s_q75": 9e3 / ms, "throughput_batch": 8,
            "max_abs_diff": difference, "device": "CPU, 1 thread"}


def test_goal_takes_the_fastest_variant_whose_rates_match_fp32():
    rows = [
        timing_row("ndt", "fp32 eager", 2.0),
        timing_row("ndt", "fp32 cuda graph", 0.5),
        timing_row("ndt", "fp16 autocast + graph", 0.2, difference=5e-3),  # too far from fp32: not counted
        timing_row("ndt", "fp32 eager", 0.1, bins=35),  # another size: not counted
        timing_row("lfads", "fp32 eager", 4.0),
    ]
    summary = goal_check(rows, *latency_kinds())
    assert summary["ndt"]["variant"] == "fp32 cuda graph" and summary["speedup"] == 8.0
    assert summary["ndt_at_most_1ms"] and summary["at_least_6x"]
    assert goal_check(rows[:4], *latency_kinds()) == {}


def test_figure_names_the_device_and_the_speedup():
    table = pd.DataFrame([
        timing_row("ndt", "fp32 eager", 0.5),
        timing_row("lfads", "fp32 eager", 2.0),
        timing_row("ndt", "fp32 eager", 0.4, bins=35),
        timing_row("lfads", "fp32 eager", 1.0, bins=35),
    ])
    fig = plot_latency(table, {"ndt_x": "tab:purple", "lfads_x": "tab:red"}, *latency_kinds())
    title = fig._suptitle.get_text()
    assert "CPU, 1 thread" in title and "4.0x faster" in title
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].lines) == 2  # two models; no GPU goal on a CPU
    assert "goal on a GPU" in fig.axes[0].texts[0].get_text() and "not drawn" in fig.axes[0].texts[0].get_text()
    bands = fig.axes[0].collections  # the interquartile range of each model's calls
    assert len(bands) == 2 and "IQR" in fig.axes[0].get_ylabel() and "batch 8" in fig.axes[1].get_ylabel()
    ndt = next(band for band in bands if band.get_facecolor()[0][2] > 0.5)  # tab:purple
    np.testing.assert_allclose(sorted(ndt.get_paths()[0].vertices[:, 1])[0], 0.9 * 0.4)
    on_gpu = plot_latency(table.assign(device="NVIDIA H200"), {"ndt_x": "tab:purple", "lfads_x": "tab:red"},
                          *latency_kinds())
    assert len(on_gpu.axes[0].lines) == 3  # two models and the goal line


@pytest.mark.parametrize(
    ("models", "problem"),
    [
        (["smoothing"], r"'smoothing' is a model of kind smoothing, which has no realtime_inference"),
        (["lstm"], r"no model named 'lstm'"),
    ],
)
def test_a_model_that_cannot_be_timed_is_named_with_the_key(tmp_path, models, problem):
    with pytest.raises(ConfigError, match=rf"'latency_study\.models': {problem}"):
        run_workflow(tmp_path, config={"latency_study": {"models": models}})


def test_demo_plans_the_latency_figure_and_a_switched_off_study_plans_none(tmp_path):
    demo = REPO / "config" / "demo.yaml"
    jobs = run_workflow(tmp_path, [demo])
    assert jobs["measure_latency"] == jobs["figure_latency"] == 1
    jobs = run_workflow(tmp_path, [demo], config={"latency_study": None})
    assert "measure_latency" not in jobs and "figure_latency" not in jobs and jobs["train"] > 0
