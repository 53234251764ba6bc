"""Aggregate training throughput of K sequential autoencoders stacked vs trained one at a time (not a test).

    python benchmarks/stacked_training.py [--device auto] [--members 1 5 15 35] [--latents 3 100] [--epochs 3]

At the attractor paper size (1280 training and 320 validation trials × 70 bins × 10 neurons, batch
650: two optimiser steps per epoch; encoder 64, NODE vector field 128, rk4), each of K members with its
own data and seed. One at a time is the trainer's `fit` (the workflow's `train` job); stacked is
`fit_stack` (`train_stack`). Time per epoch is the median of the history's `seconds` (training steps
and validation; checkpoint writes, ~100 kB per member, are not in it) over epochs 2 onwards (the first
has allocation and warm-up). Aggregate throughput is member-epochs per second. Ratios are measured in
one run, on one device.

The attractor sweep (3 systems × 2 generators × 7 latent sizes × 5 seeds = 210 runs × 3000 epochs) is
projected from the latent sizes measured (their mean stands for the 7 sizes): one at a time, and as
the workflow plans it, 14 stacks of 15 (every system and seed of one generator and latent size).
"""

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentdyn.data.prepare import prepare  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.sequential_autoencoder.model import build, stack  # noqa: E402
from latentdyn.training.device import resolve_device  # noqa: E402
from latentdyn.training.stacked import Member, fit_stack  # noqa: E402
from latentdyn.training.trainer import TrainerSettings, fit  # noqa: E402

SWEEP = {"systems": 3, "latent_sizes": 7, "seeds": 5, "epochs": 3000}
STACK = SWEEP["systems"] * SWEEP["seeds"]  # members of one planned stack


def dataset(seed):
    rng = np.random.default_rng(seed)
    sizes = (("train", 1280), ("valid", 320), ("eval", 400))
    arrays = {f"{split}_spikes_heldin": rng.poisson(1.5, size=(n, 70, 10)).astype(np.float32) for split, n in sizes}
    return prepare(arrays, {"dataset": f"bench{seed}", "bin_width_s": 0.015}, valid_fraction=None, seed=seed)


def params_of(dynamics, latent, epochs):
    """The paper config's model (config/config.yaml) at `latent`, for `epochs` epochs."""
    settings = {"learning_rate": 1e-3, "weight_decay": 1e-4} if dynamics == "gru" else {
        "learning_rate": 5e-3, "weight_decay": 1e-5, "curriculum": {"points_per_group": 5, "epochs_per_group": 150}}
    return resolve_model("bench", {"kind": "sequential_autoencoder", "dynamics": dynamics, "latent_size": latent,
                                   "batch_size": 650, "epochs": epochs, "log_every": 10**6, "select": "last", **settings})


def members(params, prepared, root):
    built = []
    for seed, data in enumerate(prepared):
        torch.manual_seed(seed)
        built.append(Member(build(params, data.shapes), data, Path(root) / str(seed), seed, f"bench{seed}"))
    return built


def seconds_per_epoch(history):
    return statistics.median(row["seconds"] for row in history[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 15, 35])
    parser.add_argument("--latents", type=int, nargs="+", default=[3, 100])
    parser.add_argument("--dynamics", nargs="+", default=["gru", "node"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per timing (the first is not timed)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    prepared = [dataset(seed) for seed in range(max(args.members))]
    lone, stacked = {}, {}
    for dynamics in args.dynamics:
        for latent in args.latents:
            params = params_of(dynamics, latent, args.epochs)

            settings = TrainerSettings.from_params(params)
            with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()):
                (member,) = members(params, prepared[:1], root)
                result = fit(member.model, member.prepared, settings, run_dir=member.run_dir, seed=0, device=device,
                             identity="b0")
            lone[dynamics, latent] = seconds_per_epoch(result.history)
            print(f"{dynamics} latent {latent:3d}  one at a time: {1 / lone[dynamics, latent]:8.2f} member-epochs/s", flush=True)
            for k in args.members:
                with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()):
                    results = fit_stack(stack, members(params, prepared[:k], root), settings, device=device)
                stacked[dynamics, latent, k] = seconds_per_epoch(results[0].history)
                rate = k / stacked[dynamics, latent, k]
                print(f"{dynamics} latent {latent:3d}  stack of {k:2d}:   {rate:8.2f} member-epochs/s"
                      f"  ({rate * lone[dynamics, latent]:5.2f}x one at a time)", flush=True)
    runs = SWEEP["systems"] * SWEEP["seeds"] * SWEEP["latent_sizes"]  # per generator
    one_at_a_time = sum(runs * SWEEP["epochs"] * statistics.mean(lone[d, latent] for latent in args.latents) for d in args.dynamics)
    print(f"attractor sweep ({len(args.dynamics) * runs} runs x {SWEEP['epochs']} epochs, latent sizes {args.latents} standing for 7),"
          f" {device.type}: one at a time {one_at_a_time / 3600:.1f} h", flush=True)
    if STACK in args.members:
        stacks = sum(SWEEP["latent_sizes"] * SWEEP["epochs"] * statistics.mean(stacked[d, latent, STACK] for latent in args.latents)
                     for d in args.dynamics)
        print(f"  as the workflow plans it ({len(args.dynamics) * SWEEP['latent_sizes']} stacks of {STACK}, one after another):"
              f" {stacks / 3600:.1f} h ({one_at_a_time / stacks:.1f}x)", flush=True)


if __name__ == "__main__":
    main()
