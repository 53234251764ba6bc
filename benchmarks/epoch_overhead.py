"""LFADS seconds per epoch end to end (the trainer's `fit`) vs the training step alone (not a test).

    python benchmarks/epoch_overhead.py [--device auto|cpu|cuda] [--sizes reaching mc_maze]
        [--trials N] [--epochs N] [--warmup-epochs N] [--threads N] [--json PATH]

The lfads_mc_maze_20ms preset (config/presets/lfads.yaml: batch 256, 35 + 10 bins, 137 held-in ->
182 output neurons) on synthetic Poisson data of two sizes:

    reaching  144 training + 36 validation trials (a simulated reaching file): one batch per epoch
    mc_maze   1721 training + 574 validation trials (mc_maze's train and val splits): 7 batches

`--trials` replaces the training trials of every size (validation: a quarter of them). Per size, in
the same process on the same data and initial weights:

- end to end: `fit` for `--epochs` epochs into a fresh run directory, everything included (each
  epoch's steps, validation, history, checkpoints, progress output). Per epoch, the time from its first
  step call to the next epoch's (median over the epochs after `--warmup-epochs`), split into the steps
  (timed inside `fit`), validation and the rest of the epoch loop (history.csv's `seconds` less the
  steps), and the end of the epoch (checkpoints, history.csv, progress: the rest of the interval).
  Also `fit`'s whole wall time per epoch (its setup, final checkpoint and model.pt included).
- step alone: the same number of optimiser steps on the same batches with the trainer's step
  (`make_step`: eager, or the CUDA graph), nothing else; per epoch's worth of steps, median.

The ratio end to end / step alone is what the epoch costs beyond its optimiser steps. Timing is host
wall clock (`time.perf_counter`); on CUDA the step is timed with CUDA events and `fit` synchronises
at each epoch's end by itself. On a shared CPU single epochs can be several times slower than the rest
(another process on a core), hence medians.
"""

import argparse
import contextlib
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from lfads_speed import seconds_between, synthetic_data, time_mark  # noqa: E402

from latentdyn.data.prepare import prepare  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.lfads import model as lfads  # noqa: E402
from latentdyn.training import trainer  # noqa: E402
from latentdyn.training.contract import Progress  # noqa: E402
from latentdyn.training.device import resolve_device  # noqa: E402
from latentdyn.training.schedules import LoopState, epoch_batches, make_optimizer  # noqa: E402
from latentdyn.training.steps import use_graph  # noqa: E402

PRESET, BINS, FORWARD = "lfads_mc_maze_20ms", 35, 10
SIZES = {"reaching": (144, 36), "mc_maze": (1721, 574)}  # training, validation trials
CPU_EPOCHS = {"reaching": 40, "mc_maze": 8}
CUDA_EPOCHS = {"reaching": 300, "mc_maze": 60}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu or cuda")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--trials", type=int, default=None, help="training trials of every size (validation: a quarter)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 40 / 8 on a CPU, 300 / 60 on CUDA")
    parser.add_argument("--warmup-epochs", type=int, default=None, help="epochs left out of the medians (default 2 on a CPU, 6 on CUDA: graph warm-up and capture)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    warmup = args.warmup_epochs if args.warmup_epochs is not None else (6 if cuda else 2)
    preset = yaml.safe_load((REPO / "config" / "presets" / "lfads.yaml").read_text())["models"][PRESET]
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or platform.machine()})"
    print(f"# {name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {PRESET}", flush=True)
    report = {"device": name, "torch": torch.__version__, "threads": torch.get_num_threads(), "sizes": {}}
    for size in args.sizes:
        n_train, n_valid = (args.trials, max(args.trials // 4, 1)) if args.trials else SIZES[size]
        epochs = args.epochs or (CUDA_EPOCHS if cuda else CPU_EPOCHS)[size]
        if epochs <= warmup + 1:
            parser.error(f"--epochs must exceed --warmup-epochs + 1 ({warmup + 1})")
        data = synthetic_data(n_train, n_valid, 1, BINS, FORWARD, args.seed)
        prepared = prepare(data, {"dataset": "bench", "bin_width_s": 0.02}, valid_fraction=None, seed=args.seed)
        params = resolve_model(PRESET, {**preset, "epochs": epochs, "log_every": 10**9})
        settings = trainer.TrainerSettings.from_params(params)
        numbers = {"train_trials": n_train, "valid_trials": n_valid, "epochs": epochs, "warmup_epochs": warmup}
        numbers.update(end_to_end(params, settings, prepared, device, args.seed, warmup))
        numbers.update(step_alone(params, settings, prepared, device, args.seed, warmup))
        numbers["ratio"] = numbers["epoch_s"] / numbers["step_alone_s"]
        report["sizes"][size] = numbers
        ms = {k: 1e3 * v for k, v in numbers.items() if k.endswith("_s")}
        print(
            f"{size:8s} {n_train:5d} trials, {numbers['steps_per_epoch']} steps/epoch: end to end {ms['epoch_s']:8.1f} ms/epoch"
            f" (steps {ms['steps_in_fit_s']:.1f}, validation and loop {ms['validation_s']:.1f}, end of epoch {ms['end_of_epoch_s']:.1f};"
            f" fit wall {ms['fit_wall_per_epoch_s']:.1f})  step alone {ms['step_alone_s']:8.1f} ms/epoch"
            f"  ratio {numbers['ratio']:.2f} (+{100 * (numbers['ratio'] - 1):.0f} %)",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"# wrote {args.json}")


def build(params, prepared, seed):
    torch.manual_seed(seed)
    return lfads.build(params, prepared.shapes)


class StepClock:
    """Times each step call (CUDA events or perf_counter) and notes when each epoch's first step began."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.first_call = {}  # epoch -> perf_counter at its first step call
        self.marks = {}  # epoch -> [(start, end)] per step

    def timed(self, step, batch, progress):
        self.first_call.setdefault(progress.epoch, time.perf_counter())
        start = time_mark(self.cuda)
        result = step(batch, progress)
        self.marks.setdefault(progress.epoch, []).append((start, time_mark(self.cuda)))
        return result

    def step_seconds(self):
        """{epoch: seconds in its step calls}."""
        if self.cuda:
            torch.cuda.synchronize()
        return {e: sum(seconds_between(s, t) for s, t in marks) for e, marks in self.marks.items()}


class _TimedStep:
    def __init__(self, step, clock):
        self.step, self.clock, self.drops_last = step, clock, step.drops_last

    def __call__(self, batch, progress):
        return self.clock.timed(self.step, batch, progress)


def end_to_end(params, settings, prepared, device, seed, warmup):
    """`fit` with its step calls timed: per-epoch intervals and their parts (medians after `warmup`)."""
    model = build(params, prepared, seed)
    clock = StepClock(device)
    make_step = trainer.make_step
    trainer.make_step = lambda *a, **k: _TimedStep(make_step(*a, **k), clock)
    try:
        with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            history = trainer.fit(model, prepared, settings, run_dir=run_dir, seed=seed, device=device, identity="bench").history
            wall = time.perf_counter() - start
    finally:
        trainer.make_step = make_step
    steps = clock.step_seconds()
    epochs = [e for e in range(warmup, len(history) - 1)]  # the last epoch has no next first step
    interval = {e: clock.first_call[e + 1] - clock.first_call[e] for e in epochs}
    return {
        "steps_per_epoch": len(clock.marks[0]),
        "epoch_s": statistics.median(interval.values()),
        "steps_in_fit_s": statistics.median(steps[e] for e in epochs),
        "validation_s": statistics.median(history[e]["seconds"] - steps[e] for e in epochs),
        "end_of_epoch_s": statistics.median(interval[e] - history[e]["seconds"] for e in epochs),
        "fit_wall_per_epoch_s": wall / len(history),
        "epoch_intervals": [interval[e] for e in epochs],
    }


def step_alone(params, settings, prepared, device, seed, warmup):
    """The trainer's step on the epochs' batches, nothing else: seconds per epoch's worth (median)."""
    model = build(params, prepared, seed).to(device)
    optimizer = make_optimizer(model, settings, graphed=use_graph(model, settings, device))
    train_batch = trainer.batch_from(prepared.train, device)
    step = trainer.make_step(model, optimizer, settings, device, train_batch)
    clock, loop, shuffler = StepClock(device), LoopState(), torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(train_batch), generator=shuffler)
        batches = [train_batch.select(rows.to(device)) for rows, _ in epoch_batches(order, settings, loop, len(train_batch), step.drops_last)]
        progress = Progress(epoch=epoch, total_epochs=settings.epochs)
        for batch in batches:
            clock.timed(step, batch, progress)
    steps = clock.step_seconds()
    return {"step_alone_s": statistics.median(steps[e] for e in range(warmup, settings.epochs))}


if __name__ == "__main__":
    main()
