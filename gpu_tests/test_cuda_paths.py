"""The CUDA paths (device: auto on a GPU): CUDA-graph training with live ramps, graph vs eager, SAE on CUDA,
the latency study's CUDA variants.

Run on a GPU host with `make test-gpu`; CI has no GPU and runs the CPU suite (tests/).
"""

import csv
import math

import numpy as np
import pytest
import torch

from latentdyn.metrics.latency import measure_latency
from latentdyn.models.kinds import resolve_model
from latentdyn.models.lfads.model import Ramp
from latentdyn.models.pipeline import train_and_predict
from latentdyn.training.device import resolve_device
from test_latency import tiny_models
from test_lfads import lfads_params, rotation_dataset


def test_auto_device_is_the_gpu():
    assert resolve_device("auto").type == "cuda"


def test_training_step_is_captured_in_a_cuda_graph_with_live_ramps(tmp_path):
    """Under the trainer's CUDA graph the ramps must follow the epoch (read from progress.epoch_tensor)."""
    arrays, attrs = rotation_dataset()
    params = lfads_params(
        epochs=6,
        batch_size=20,
        cuda_graph=True,
        kl_increase_epochs=4,
        l2_increase_epochs=4,
        cd_rate=0.3,
        sv_rate=0.2,
        dropout_rate=0.1,
        posterior_samples=3,
        early_stopping=None,
    )
    outputs, _ = train_and_predict(params, arrays, attrs, run_dir=tmp_path, seed=0, device="cuda")
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    ramp = Ramp(0, 4)
    assert [float(r["train_kl_ramp"]) for r in rows] == pytest.approx([ramp(torch.tensor(float(e))).item() for e in range(6)])
    assert all(math.isfinite(float(r["train_loss"])) and math.isfinite(float(r["valid_sv_nll"])) for r in rows)
    assert np.all(np.isfinite(outputs["eval_rates_heldin"]))


def test_graph_and_eager_training_reach_the_same_fit(tmp_path):
    """Same model, seed and data: the graphed and the eager loop differ only in sampling noise."""
    arrays, attrs = rotation_dataset()
    results = {}
    for graph in (True, False):
        params = lfads_params(epochs=60, batch_size=20, cuda_graph=graph, early_stopping=None, posterior_samples=5)
        train_and_predict(params, arrays, attrs, run_dir=tmp_path / str(graph), seed=0, device="cuda")
        rows = list(csv.DictReader(open(tmp_path / str(graph) / "history.csv")))
        results[graph] = float(rows[-1]["valid_recon"])
    assert results[True] == pytest.approx(results[False], rel=0.05)


@pytest.mark.parametrize("dynamics", ["gru", "node"])
def test_sequential_autoencoder_trains_on_cuda(tmp_path, dynamics):
    rng = np.random.default_rng(0)
    arrays = {f"{s}_spikes_heldin": rng.poisson(1.0, (n, 20, 6)).astype(np.float32) for s, n in (("train", 40), ("eval", 10))}
    params = resolve_model("sae", {"kind": "sequential_autoencoder", "dynamics": dynamics, "latent_size": 3, "learning_rate": 1e-2, "epochs": 3, "batch_size": 16})
    outputs, attrs = train_and_predict(params, arrays, {"dataset": "toy", "bin_width_s": 0.01}, run_dir=tmp_path, seed=0, device="auto")
    assert outputs["eval_rates_heldin"].shape == (10, 20, 6) and np.isfinite(outputs["eval_rates_heldin"]).all()


def test_latency_variants_are_captured_and_fp32_ones_give_the_eager_rates():
    """Both kinds' inference captured in a CUDA graph, and under bf16 autocast (LFADS's fused
    recurrences stay fp32 inside it: cells.at_full_precision); compiled only where the kind allows it."""
    rows = list(measure_latency(tiny_models(), torch.device("cuda"), 5, 3, [6, 14], batch=4, repeats=3))
    variants = {(row["kind"], row["variant"], row["bins"]): row for row in rows}
    for bins in (6, 14):
        assert variants[("ndt", "fp32 cuda graph", bins)]["max_abs_diff"] < 1e-5
        assert variants[("lfads", "fp32 cuda graph", bins)]["max_abs_diff"] < 1e-5
        assert ("ndt", "bf16 autocast + graph", bins) in variants
        assert ("lfads", "bf16 autocast + graph", bins) in variants
    assert not any(kind == "lfads" and variant == "fp32 compile" for kind, variant, _ in variants)
    assert all(row["ms_per_trial"] > 0 and row["device"] == torch.cuda.get_device_name() for row in rows)


def test_a_stack_trains_on_cuda_as_its_members_alone(tmp_path):
    """Stacked training on the GPU (dropout masks from per-member CUDA generators) equals each member
    trained alone on the GPU within float rounding, and writes the lone run's files."""
    from test_stacked_training import SETUPS, assert_same_run, member

    from latentdyn.models.sequential_autoencoder.model import stack
    from latentdyn.training.stacked import fit_stack
    from latentdyn.training.trainer import TrainerSettings, fit

    params = SETUPS["node, adamw, curriculum"]
    settings = TrainerSettings.from_params(params)
    members = [member(params, i, tmp_path / "stack") for i in range(3)]
    results = fit_stack(stack, members, settings, device="auto")
    for index, (stacked, result) in enumerate(zip(members, results)):
        lone = member(params, index, tmp_path / "alone")
        lone_result = fit(lone.model, lone.prepared, settings, run_dir=lone.run_dir, seed=lone.seed, device="auto",
                          identity=lone.identity)
        assert next(stacked.model.parameters()).device.type == "cuda"
        assert_same_run(stacked, result, lone, lone_result, exact=False)
