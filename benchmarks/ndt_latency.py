"""Inference latency of NDT vs LFADS at the MC_Maze 5 ms size (not a test).

    python benchmarks/ndt_latency.py [--device auto|cpu|cuda] [--bins 35 70 140 280] [--repeats 200]
                                     [--batch 256] [--threads N] [--json PATH]

On a 2-core CPU: --repeats 20 --batch 64 --threads 1 takes under a minute.

A command line over latentdyn.metrics.latency, which the workflow's `measure_latency` rule runs too
(config `latency_study`; figure results/figures/ndt_latency.png). It times the paper config's
`latency_study.models`, the NDT and LFADS mc_maze 5 ms presets (config/presets/), built for 137 held-in
and 45 held-out units; the window's bins vary (140 is MC_Maze at 5 ms) with forward bins in MC_Maze's
proportion (40 per 140).
LFADS decodes its posterior means (one pass, no sampling); NDT runs one pass with nothing masked. Each
timing is the median of `--repeats` calls after warm-up calls, with the device synchronised around
every call (NDT's paper timed without synchronisation: README §11).

Per trial: a batch of 1, what a real-time decoder sees. Throughput: trials per second at `--batch`.
On CUDA, further variants are tried: the batch-1 forward captured in a CUDA graph, torch.compile for
NDT (skipped with a printed note if it fails), and bf16 / fp16 autocast inside the graph; every variant
prints the largest absolute difference of its rates from the fp32 eager ones, so "same outputs" is
checked, not assumed. Goal on an H100 (issue): NDT <= 1 ms per trial, >= 6x faster than LFADS.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentdyn.metrics.latency import describe_device, measure_latency, row_line  # noqa: E402
from latentdyn.metrics.latency_goal import GOAL_BINS, goal_check  # noqa: E402
from latentdyn.models.kinds import latency_kinds, resolve_model  # noqa: E402
from latentdyn.training.device import resolve_device  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config"
N_HELDIN, N_HELDOUT = 137, 45


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bins", type=int, nargs="+", default=[35, 70, 140, 280])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the table (and the goal check) here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    models = latency_study_models()
    rows = []
    for row in measure_latency(models, device, N_HELDIN, N_HELDOUT, args.bins, args.batch, args.repeats):
        print(row_line(row), flush=True)
        rows.append(row)
    print_table(rows, device)
    summary = goal_check(rows, *latency_kinds())
    print_goal(summary, device)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"device": describe_device(device), "torch": torch.__version__, "rows": rows, "summary": summary},
                indent=2,
            )
        )


def latency_study_models():
    """The paper config's latency_study models (name -> params, defaults filled), defined as the Snakefile
    reads them: the presets, then config.yaml's own models."""
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    defined = {}
    for path in [*sorted((CONFIG / "presets").glob("*.yaml")), CONFIG / "config.yaml"]:
        defined.update(yaml.safe_load(path.read_text()).get("models", {}))
    return {name: resolve_model(name, defined[name]) for name in config["latency_study"]["models"]}


def print_table(rows, device):
    print(f"\n{describe_device(device)}, torch {torch.__version__}; median over repeats, synchronised\n")
    print(
        f"{'model':19s}{'variant':24s}{'bins':>5s}{'ms/trial (b=1)':>16s}{'trials/s (batch)':>20s}{'max|Δ| vs fp32':>16s}"
    )
    for row in rows:
        print(
            f"{row['model']:19s}{row['variant']:24s}{row['bins']:5d}{row['ms_per_trial']:16.3f}"
            f"{row['trials_per_s']:14.0f} ({row['throughput_batch']:3d}){row['max_abs_diff']:16.2e}"
        )


def print_goal(summary, device):
    if not summary:
        print(f"\nno goal check: it needs {GOAL_BINS} bins and rates matching fp32 for both models")
        return
    fast_kind, slow_kind = latency_kinds()
    fast, slow = summary[fast_kind], summary[slow_kind]
    print(
        f"\n{GOAL_BINS} bins, batch 1: {fast_kind.upper()} {fast['ms_per_trial']:.3f} ms ({fast['variant']}), "
        f"{slow_kind.upper()} {slow['ms_per_trial']:.3f} ms ({slow['variant']}): "
        f"{fast_kind.upper()} {summary['speedup']:.1f}x faster"
    )
    if device.type == "cuda":
        print(
            f"goal (set for an H100; this is {describe_device(device)}): "
            f"{fast_kind.upper()} <= 1 ms {'met' if summary[f'{fast_kind}_at_most_1ms'] else 'NOT met'}, "
            f">= 6x {slow_kind.upper()} {'met' if summary['at_least_6x'] else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
