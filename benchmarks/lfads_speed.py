"""LFADS training and inference throughput and peak memory, reference vs fast path (not a test).

    python benchmarks/lfads_speed.py [--device auto|cpu|cuda] [--presets 20ms 5ms] [--trials 2048]
        [--epochs 4] [--warmup-epochs 1] [--samples 1 50] [--predict-trials N] [--repeats 3]
        [--configs reference fast fast_nograph] [--threads N] [--json PATH]

Presets lfads_mc_maze_20ms (35 window + 10 forward bins) and lfads_mc_maze_5ms (140 + 40), both
137 held-in -> 182 output neurons, batch 256 (config/presets/lfads.yaml), on synthetic Poisson data of
those shapes. Configurations, measured in the same run on the same data and initial weights:

    reference     eager_recurrence: true,  cuda_graph: false  (lfads-torch's per-step eager loop)
    fast          eager_recurrence: false, cuda_graph: true   (the graph takes effect on CUDA only)
    fast_nograph  eager_recurrence: false, cuda_graph: false  (CUDA only by default: on a CPU it is
                                                               `fast`; separates the graph's gain)

Training goes through the trainer's `fit` (so on CUDA the `fast` step is the captured CUDA graph).
Training throughput = trials per second of the epoch's optimiser-step loop (first step call to end
of the last one: CUDA events, no synchronisation inside the loop; validation and checkpointing
excluded), median over the timed epochs; the first `--warmup-epochs` epochs (CUDA-graph warm-up and
capture included) are not timed. Each epoch is `--trials` // 256 full batches. Inference throughput
= trials per second of `latentdyn.models.lfads.model.predict` (posterior sampling, the model in eval
mode, outputs copied to the host) at each `--samples` count, median of `--repeats` calls after one
untimed call. Peak memory: `torch.cuda.max_memory_allocated` per phase on CUDA; on a CPU the
process's maximum RSS so far (`resource.getrusage`: it only grows, so read it in order).

Before timing, fast and reference are checked to give the same loss and gradients on the same batch
(same weights and seed, eval mode: no dropout; posterior sampling on, its draws identical).
Prints one line per configuration and a ratio line (fast / reference) per preset; `--json PATH`
writes every number.
"""

import argparse
import contextlib
import gc
import io
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from latentdyn.data.prepare import prepare  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.lfads import model as lfads  # noqa: E402
from latentdyn.training import trainer  # noqa: E402
from latentdyn.training.contract import Progress  # noqa: E402
from latentdyn.training.device import resolve_device  # noqa: E402

PRESETS = {  # preset name, window bins, forward bins (held-in 137, held-out 45: mc_maze)
    "20ms": ("lfads_mc_maze_20ms", 35, 10),
    "5ms": ("lfads_mc_maze_5ms", 140, 40),
}
N_HELDIN, N_HELDOUT = 137, 45
CONFIGS = {
    "reference": {"eager_recurrence": True, "cuda_graph": False},
    "fast": {"eager_recurrence": False, "cuda_graph": True},
    "fast_nograph": {"eager_recurrence": False, "cuda_graph": False},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu or cuda")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--trials", type=int, default=2048, help="training trials (whole batches of 256 per epoch)")
    parser.add_argument("--valid-trials", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4, help="epochs in all, warm-up included")
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 50], help="posterior samples for predict")
    parser.add_argument("--predict-trials", type=int, default=None, help="trials predicted per call (default 1024 on CUDA, 64 on a CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed predict calls per sample count")
    parser.add_argument("--configs", nargs="+", default=None, choices=list(CONFIGS), help="default: all on CUDA; reference and fast on a CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args()
    if args.epochs <= args.warmup_epochs:
        parser.error("--epochs must exceed --warmup-epochs")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    configs = args.configs or (list(CONFIGS) if cuda else ["reference", "fast"])
    predict_trials = args.predict_trials or (1024 if cuda else 64)
    presets = yaml.safe_load((REPO / "config" / "presets" / "lfads.yaml").read_text())["models"]
    report = {
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "presets": {},
    }
    print(f"# {report['device']}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
    for key in args.presets:
        name, n_bins, n_forward = PRESETS[key]
        data = synthetic_data(args.trials, args.valid_trials, predict_trials, n_bins, n_forward, args.seed)
        prepared = prepare(data, {"dataset": "speed", "bin_width_s": 0.001 * int(key[:-2])}, valid_fraction=None, seed=args.seed)
        to_predict = prepare(
            {"train_spikes_heldin": data["test_spikes_heldin"]}, {"dataset": "speed"}, valid_fraction=None, seed=args.seed
        )
        params = {c: resolve_model(name, {**presets[name], **CONFIGS[c], "epochs": args.epochs, "log_every": 10**9}) for c in configs}
        result = {"preset": name, "bins": [n_bins, n_forward], "neurons": [N_HELDIN, N_HELDIN + N_HELDOUT], "configs": {}}
        if "reference" in configs and len(configs) > 1:
            other = next(c for c in configs if c != "reference")
            result["check"] = check_equivalence(params["reference"], params[other], prepared, device, args.seed)
            c = result["check"]
            print(
                f"{key:4s} check {other} vs reference (eval mode, same batch and seed): loss {c['loss_reference']:.6f} vs"
                f" {c['loss_fast']:.6f}, |diff| {c['loss_abs_diff']:.2e} (rel {c['loss_rel_diff']:.1e}); gradients max |diff| /"
                f" max |grad| {c['grad_rel_diff']:.1e}  {'OK' if c['ok'] else 'MISMATCH'}",
                flush=True,
            )
        for config in configs:
            # predict never uses the CUDA graph: fast_nograph's would repeat fast's
            numbers = measure(params[config], prepared, to_predict, device, args, predict=config != "fast_nograph")
            result["configs"][config] = numbers
            print_line(key, config, numbers, device)
        result["ratios"] = ratios(result["configs"])
        for other, values in result["ratios"].items():
            parts = [f"train {values['train']:.2f}x"] + [f"predict[{s}] {values[f'predict_{s}']:.2f}x" for s in args.samples if f"predict_{s}" in values]
            print(f"{key:4s} ratio {other}/reference: " + "  ".join(parts), flush=True)
        report["presets"][key] = result
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"# wrote {args.json}")


def synthetic_data(n_train, n_valid, n_test, n_bins, n_forward, seed):
    """Poisson counts of mc_maze's shape (rates ~0.1-0.5 per bin) for train, valid and test splits."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.05, 0.5, N_HELDIN + N_HELDOUT).astype(np.float32)
    data = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        counts = rng.poisson(rates, size=(n, n_bins + n_forward, len(rates))).astype(np.float32)
        data[f"{split}_spikes_heldin"] = counts[:, :n_bins, :N_HELDIN]
        if split != "test":
            data[f"{split}_spikes_heldout"] = counts[:, :n_bins, N_HELDIN:]
            data[f"{split}_spikes_heldin_forward"] = counts[:, n_bins:, :N_HELDIN]
            data[f"{split}_spikes_heldout_forward"] = counts[:, n_bins:, N_HELDIN:]
    return data


def build(params, prepared, seed):
    torch.manual_seed(seed)
    return lfads.build(params, prepared.shapes)


def check_equivalence(reference_params, fast_params, prepared, device, seed):
    """Loss and gradients of the two paths on one batch: same weights, eval mode, same RNG seed."""
    models = [build(reference_params, prepared, seed), build(fast_params, prepared, seed)]
    models[1].load_state_dict(models[0].state_dict())
    batch = trainer.batch_from(prepared.train, device).select(torch.arange(min(256, len(prepared.train)), device=device))
    losses, grads = [], []
    for model in models:
        model.to(device).eval()
        torch.manual_seed(seed + 1)
        result = model.validation_step(batch, Progress(epoch=100, total_epochs=1000))  # ramps at 1
        result.loss.backward()
        losses.append(result.loss.item())
        grads.append([p.grad.detach().clone() for p in model.parameters() if p.grad is not None])
    scale = max(g.abs().max().item() for g in grads[0])
    grad_diff = max((a - b).abs().max().item() for a, b in zip(*grads)) / scale
    loss_diff = abs(losses[0] - losses[1])
    rel = loss_diff / max(abs(losses[0]), 1e-12)
    del models
    _free(device)
    return {
        "loss_reference": losses[0],
        "loss_fast": losses[1],
        "loss_abs_diff": loss_diff,
        "loss_rel_diff": rel,
        "grad_rel_diff": grad_diff,
        "ok": bool(rel < 1e-5 and grad_diff < 1e-3),
    }


def time_mark(cuda):
    """A point in time: a CUDA event recorded on the current stream (read after a synchronisation, so
    the device's work is timed, not its launch), or perf_counter on a CPU."""
    if cuda:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event
    return time.perf_counter()


def seconds_between(start, end):
    """Seconds between two `time_mark`s (CUDA events only once the device is synchronised)."""
    if isinstance(start, float):
        return end - start
    return start.elapsed_time(end) / 1e3


class _TimedStep:
    """Wraps the trainer's step: per epoch, the time from its first step call to the end of its last
    (CUDA events on the current stream, read after `fit`; perf_counter on a CPU), and trials stepped."""

    def __init__(self, step, device):
        self.step, self.cuda = step, device.type == "cuda"
        self.drops_last = step.drops_last
        self.epochs = {}  # epoch -> [start marker, end marker, trials, steps]

    def __call__(self, batch, progress):
        if progress.epoch not in self.epochs:
            self.epochs[progress.epoch] = [time_mark(self.cuda), None, 0, 0]
        result = self.step(batch, progress)
        entry = self.epochs[progress.epoch]
        entry[1], entry[2], entry[3] = time_mark(self.cuda), entry[2] + len(batch), entry[3] + 1
        return result

    def seconds(self):
        """{epoch: (seconds, trials, steps)}."""
        if self.cuda:
            torch.cuda.synchronize()
        return {e: (seconds_between(s, t), n, k) for e, (s, t, n, k) in self.epochs.items()}


def measure(params, prepared, to_predict, device, args, predict=True):
    """Train through `fit` (timing the step loop), then time `predict` at each sample count."""
    cuda = device.type == "cuda"
    model = build(params, prepared, args.seed)
    timed = {}
    make_step = trainer.make_step

    def make_timed_step(*step_args, **step_kwargs):
        timed["step"] = _TimedStep(make_step(*step_args, **step_kwargs), device)
        return timed["step"]

    _free(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    trainer.make_step = make_timed_step
    try:
        with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):  # fit's progress lines
            start = time.perf_counter()
            history = trainer.fit(
                model, prepared, trainer.TrainerSettings.from_params(params), run_dir=run_dir, seed=args.seed, device=device, identity="speed"
            ).history
            fit_seconds = time.perf_counter() - start
    finally:
        trainer.make_step = make_step
    epochs = timed["step"].seconds()
    timed_epochs = [epochs[e] for e in sorted(epochs) if e >= args.warmup_epochs]
    per_epoch = [trials / seconds for seconds, trials, _ in timed_epochs]
    trials_per_step = timed_epochs[0][1] / timed_epochs[0][2]
    numbers = {
        "graphed": type(timed["step"].step).__name__ == "_GraphedStep",
        "train_trials_per_s": statistics.median(per_epoch),
        "train_trials_per_s_epochs": per_epoch,
        "step_ms": 1e3 * trials_per_step / statistics.median(per_epoch),  # at the median throughput
        "steps_per_epoch": timed_epochs[0][2],
        "fit_seconds": fit_seconds,
        "epoch_seconds_with_validation": [row["seconds"] for row in history],
        "train_peak_bytes": _peak(device),
    }
    for n_samples in args.samples if predict else []:
        predict_params = {**params, "posterior_samples": n_samples}
        _free(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        lfads.predict(model, to_predict, predict_params, device)  # warm-up, untimed
        seconds = []
        for _ in range(args.repeats):
            _sync(device)
            start = time.perf_counter()
            lfads.predict(model, to_predict, predict_params, device)  # returns host arrays: synchronised
            seconds.append(time.perf_counter() - start)
        numbers[f"predict_{n_samples}_trials_per_s"] = len(to_predict.train) / statistics.median(seconds)
        numbers[f"predict_{n_samples}_peak_bytes"] = _peak(device)
    del model
    _free(device)
    return numbers


def ratios(configs):
    if "reference" not in configs:
        return {}
    ref = configs["reference"]
    out = {}
    for name, numbers in configs.items():
        if name == "reference":
            continue
        out[name] = {"train": numbers["train_trials_per_s"] / ref["train_trials_per_s"]}
        for key in numbers:
            if key.startswith("predict_") and key.endswith("_trials_per_s"):
                out[name][key[: -len("_trials_per_s")]] = numbers[key] / ref[key]
    return out


def print_line(key, config, numbers, device):
    unit = "peak" if device.type == "cuda" else "max RSS so far"
    predicts = "  ".join(
        f"predict[{k.split('_')[1]}] {v:8.1f} trials/s"
        for k, v in numbers.items()
        if k.startswith("predict_") and k.endswith("_trials_per_s")
    )
    memory = "  ".join(
        f"{k[: -len('_peak_bytes')]} {v / 2**30:.2f} GiB" for k, v in numbers.items() if k.endswith("_peak_bytes")
    )
    graph = " (CUDA graph)" if numbers["graphed"] else ""
    print(
        f"{key:4s} {config:12s} {device.type:4s} train {numbers['train_trials_per_s']:8.1f} trials/s"
        f" ({numbers['step_ms']:.1f} ms/step{graph})  {predicts}  {unit}: {memory}",
        flush=True,
    )


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def _peak(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


if __name__ == "__main__":
    main()
