"""AutoLFADS population throughput and Ray's per-generation overhead on one machine (not a test).

    python benchmarks/pbt_overhead.py [--workers 2 4] [--cpus 2] [--generations 4] [--generation-epochs 5]
        [--trials 144] [--json PATH]

Model: lfads_demo's architecture (config/presets/lfads.yaml) on synthetic Poisson data of the demo
reaching set's shape (35 + 10 bins of 45 held-in and 15 held-out units); each worker one CPU thread
(pbt.cpus_per_worker 1), Ray started here with `--cpus` CPUs before timing (its start is not counted).

- One worker alone: the shared trainer's `fit`, one thread, generations × generation epochs.
- A population of W workers: models/autolfads run_population for the same number of generations,
  exploiting from the first generation's end (every generation has a tournament, clones and restores).
  Summed throughput = W × training trials × epochs / the search's wall time.
- Per-generation overhead = (the search's wall time − the ideal time) / generations, where the ideal
  time of a generation is what its training took (the `seconds` of the best worker's lineage in
  history.csv, each epoch's training and validation) times the waves Ray needs (ceil(W / CPUs));
  the rest is Ray's and the search's: the workers' process start, waiting for the generation's
  tournament, saving checkpoints, the trainer's restore (a loser's from its winner's checkpoint), the
  driver's bookkeeping, and the wait for the generation's slowest worker. Reported as a fraction of
  the measured generation and of a 25-epoch one (the published generation; the goal is under 5 %).
  The same after the first generation: from its end to the search's, less the ideal time of the later
  generations, per generation; the workers' process start and imports, paid once per search, are left
  out.
- Of that, worker imbalance: a generation ends with its slowest slot (the process training workers
  `slot`, `slot + slots`, ...: their epochs' seconds, population.csv's `training_s`, summed), not with
  the best worker's lineage. Ray's share is the rest: the search's time less the slowest slot's
  training in every generation. Imbalance comes from the machine (other processes on the CPUs), not
  from Ray; synchronous PBT waits for it by design.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import ray
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from latentdyn.models.autolfads.tune import POPULATION_HISTORY, worker_runtime_env  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.pipeline import train  # noqa: E402
from latentdyn.training.reporting import HISTORY_NAME  # noqa: E402

BINS, FORWARD, HELDIN, HELDOUT = 35, 10, 45, 15  # the demo reaching set at 20 ms
PUBLISHED_GENERATION_EPOCHS = 25
GOAL_FRACTION = 0.05


def synthetic_data(n_trials, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_trials), ("eval", max(n_trials // 3, 1))):
        for units, size in (("heldin", HELDIN), ("heldout", HELDOUT)):
            arrays[f"{split}_spikes_{units}"] = rng.poisson(0.5, (n, BINS, size)).astype(np.float32)
            arrays[f"{split}_spikes_{units}_forward"] = rng.poisson(0.5, (n, FORWARD, size)).astype(np.float32)
    return arrays, {"dataset": "synthetic", "bin_width_s": 0.02}


def demo_architecture():
    presets = yaml.safe_load((REPO / "config" / "presets" / "lfads.yaml").read_text())["models"]
    return {k: v for k, v in presets["lfads_demo"].items() if k not in ("kind", "early_stopping", "epochs")}


def time_alone(data, attrs, epochs):
    """Wall seconds and summed epoch seconds of one model trained alone on one thread."""
    params = resolve_model("alone", {**demo_architecture(), "kind": "lfads", "epochs": epochs, "log_every": epochs})
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        train(params, data, attrs, run_dir=run_dir, seed=0, device="cpu")
        wall = time.perf_counter() - start
        trained = pd.read_csv(Path(run_dir) / HISTORY_NAME)["seconds"].sum()
    return wall, float(trained)


def time_population(data, attrs, workers, generations, generation_epochs):
    """Wall seconds of the search; its overhead per generation against the ideal (the lineage's training
    per generation times the waves of workers Ray runs), overall and after the first generation
    (population.csv's `finished`: the one-off start of the workers' processes left out); and Ray's
    share of each, against the slowest slot's training in every generation instead (imbalance left out)."""
    params = resolve_model("population", {
        **demo_architecture(), "kind": "autolfads", "epochs": generations * generation_epochs,
        "log_every": generation_epochs,
        "pbt": {"workers": workers, "generation_epochs": generation_epochs, "first_exploit_epoch": generation_epochs,
                "stop_patience": generations + 1},
    })
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.time()
        train(params, data, attrs, run_dir=run_dir, seed=0, device="cpu")
        end = time.time()
        history = pd.read_csv(Path(run_dir) / HISTORY_NAME)
        population = pd.read_csv(Path(run_dir) / POPULATION_HISTORY)
    slots = min(workers, int(ray.cluster_resources()["CPU"]))
    waves = math.ceil(workers / slots)
    ideal = history["seconds"].sum() * waves
    first_end = population.loc[population["generation"] == 1, "finished"].max()
    later_ideal = history.loc[history["epoch"] > generation_epochs, "seconds"].sum() * waves
    slot_training = population.assign(slot=population["worker"] % slots).groupby(["generation", "slot"])["training_s"].sum()
    slowest = slot_training.groupby("generation").max()
    later = generations - 1
    return {
        "wall_s": end - start, "ideal_s": float(ideal),
        "overhead_per_generation_s": max(end - start - ideal, 0.0) / generations,
        "later_overhead_per_generation_s": (end - first_end - later_ideal) / later if later else math.nan,
        "ray_per_generation_s": (end - start - slowest.sum()) / generations,
        "later_ray_per_generation_s": (end - first_end - slowest[slowest.index > 1].sum()) / later if later else math.nan,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs Ray may use (the job's)")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--generation-epochs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=144, help="training trials (the demo reaching set's 144)")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args()
    data, attrs = synthetic_data(args.trials)
    epochs = args.generations * args.generation_epochs
    n_train = round(args.trials * (1 - resolve_model("x", {"kind": "lfads"})["valid_fraction"]))
    results = {"settings": vars(args), "training_trials": n_train}

    wall, trained = time_alone(data, attrs, epochs)
    alone = n_train * epochs / wall
    epoch_s = trained / epochs
    results["alone"] = {"wall_s": wall, "epoch_s": epoch_s, "trials_per_s": alone}
    print(f"one worker alone: {alone:.0f} trials/s ({epoch_s:.3f} s per epoch, {wall:.1f} s for {epochs} epochs)")

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, runtime_env=worker_runtime_env())
    try:
        for workers in args.workers:
            timed = time_population(data, attrs, workers, args.generations, args.generation_epochs)
            summed = workers * n_train * epochs / timed["wall_s"]
            generation_s = timed["wall_s"] / args.generations
            generation_25 = PUBLISHED_GENERATION_EPOCHS * epoch_s * math.ceil(workers / args.cpus)

            def of_25(seconds):
                return seconds / (seconds + generation_25)

            overhead, steady = timed["overhead_per_generation_s"], timed["later_overhead_per_generation_s"]
            ray_share, later_ray = timed["ray_per_generation_s"], timed["later_ray_per_generation_s"]
            results[f"workers_{workers}"] = {
                **timed, "summed_trials_per_s": summed, "vs_alone": summed / alone,
                "overhead_fraction": overhead / generation_s, "overhead_fraction_25_epochs": of_25(overhead),
                "later_overhead_fraction_25_epochs": of_25(steady), "ray_fraction_25_epochs": of_25(ray_share),
                "later_ray_fraction_25_epochs": of_25(later_ray),
            }
            print(f"{workers} workers on {args.cpus} CPUs: {summed:.0f} trials/s summed ({summed / alone:.2f}x one alone);"
                  f" overhead {overhead:.2f} s per generation = {overhead / generation_s:.1%} of a"
                  f" {args.generation_epochs}-epoch generation, {of_25(overhead):.1%} of a {PUBLISHED_GENERATION_EPOCHS}-epoch"
                  f" one (goal < {GOAL_FRACTION:.0%}); after the first generation {steady:.2f} s per generation ="
                  f" {of_25(steady):.1%} of a {PUBLISHED_GENERATION_EPOCHS}-epoch one. Without worker imbalance (Ray's"
                  f" share): {ray_share:.2f} s = {of_25(ray_share):.1%}, after the first generation {later_ray:.3f} s ="
                  f" {of_25(later_ray):.1%}", flush=True)
    finally:
        ray.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
