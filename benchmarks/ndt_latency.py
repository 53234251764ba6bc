"""Inference latency of NDT vs LFADS at the MC_Maze 5 ms size (not a test).

    python benchmarks/ndt_latency.py [--device auto|cpu|cuda] [--bins 35 70 140 280] [--repeats 200]
                                     [--batch 256] [--threads N] [--json PATH]

On a 2-core CPU: --repeats 20 --batch 64 --threads 1 takes under a minute.

Both models come from their mc_maze 5 ms presets (config/presets/{ndt,lfads}.yaml), built for 137
held-in and 45 held-out units; the window's bins vary (140 is MC_Maze at 5 ms) with forward bins in
MC_Maze's proportion (40 per 140). LFADS decodes its posterior means (one pass, no sampling); NDT runs
one pass with nothing masked. Each timing is the median of `--repeats` calls after warm-up calls, with
the device synchronised around every call (NDT's paper timed without synchronisation: README §11).

Per trial: a batch of 1, what a real-time decoder sees. Throughput: trials per second at `--batch`.
On CUDA, further variants are tried: the batch-1 forward captured in a CUDA graph, torch.compile
(skipped with a printed note if it fails), and bf16 / fp16 autocast inside the graph; every variant
prints the largest absolute difference of its rates from the fp32 eager ones, so "same outputs" is
checked, not assumed. Goal on an H100 (issue): NDT <= 1 ms per trial, >= 6x faster than LFADS.
"""

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentdyn.data.prepare import DataShapes  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.lfads import model as lfads  # noqa: E402
from latentdyn.models.ndt import model as ndt  # noqa: E402
from latentdyn.training.trainer import resolve_device  # noqa: E402

PRESETS = Path(__file__).resolve().parents[1] / "config" / "presets"
N_HELDIN, N_HELDOUT = 137, 45
FORWARD_PER_BIN = 40 / 140
WARMUP_CALLS = 10


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
    torch.manual_seed(0)
    rows = []
    for n_bins in args.bins:
        shapes = DataShapes(N_HELDIN, N_HELDOUT, n_bins, round(n_bins * FORWARD_PER_BIN))
        trial = torch.poisson(torch.full((1, n_bins, N_HELDIN), 0.3)).to(device)
        batch = torch.poisson(torch.full((args.batch, n_bins, N_HELDIN), 0.3)).to(device)
        for name, rates in (("ndt", ndt_rates(shapes, device)), ("lfads", lfads_rates(shapes, device))):
            rows += time_variants(name, rates, trial, batch, device, args.repeats)
    print_table(rows, device)
    summary = goal_check(rows, device)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"device": describe(device), "torch": torch.__version__, "rows": rows, "summary": summary}, indent=2
            )
        )


def ndt_rates(shapes, device):
    params = resolve_model("ndt_mc_maze_5ms", preset("ndt", "ndt_mc_maze_5ms"))
    model = ndt.build(params, shapes).to(device).eval()
    return lambda x: model.infer(x)[0].exp()


def lfads_rates(shapes, device):
    params = resolve_model("lfads_mc_maze_5ms", preset("lfads", "lfads_mc_maze_5ms"))
    model = lfads.build(params, shapes).to(device).eval()
    return lambda x: model.distribution.mean(model(x, sample=False).params)


def preset(kind, name):
    return yaml.safe_load((PRESETS / f"{kind}.yaml").read_text())["models"][name]


def variants(model_name, device):
    """(name, mode, autocast dtype) to time. LFADS is not compiled: torch.compile over its unrolled
    recurrence compiles very slowly (README §13); a CUDA graph is its fast path."""
    found = [("fp32 eager", "eager", None)]
    if device.type == "cuda":
        found.append(("fp32 cuda graph", "graph", None))
        if model_name == "ndt":
            found += [
                ("fp32 compile", "compile", None),
                ("bf16 autocast + graph", "graph", torch.bfloat16),
                ("fp16 autocast + graph", "graph", torch.float16),
            ]
    return found


def time_variants(model_name, rates, trial, batch, device, repeats):
    """One row per variant: batch-1 latency, batched throughput, max |rates − fp32 eager rates|."""
    n_bins = trial.shape[1]
    with torch.inference_mode():
        reference = rates(trial)
    rows = []
    for variant, mode, dtype in variants(model_name, device):
        try:
            per_trial, per_batch = (make_runner(mode, dtype, rates, inputs) for inputs in (trial, batch))
        except Exception as error:  # torch.compile or capture unavailable here: say so, go on
            print(
                f"note: {model_name} {variant} at {n_bins} bins skipped: {type(error).__name__}: {str(error)[:200]}",
                flush=True,
            )
            continue
        with torch.inference_mode():
            difference = (per_trial() - reference).abs().max().item()
            trial_ms = median_ms(per_trial, repeats, device)
            batch_ms = median_ms(per_batch, max(repeats // 10, 3), device)
        row = {
            "model": model_name,
            "variant": variant,
            "bins": n_bins,
            "ms_per_trial": trial_ms,
            "trials_per_s": batch.shape[0] / batch_ms * 1e3,
            "batch": batch.shape[0],
            "max_abs_diff": difference,
        }
        rows.append(row)
        print(
            f"{model_name:5s} {variant:22s} {n_bins:4d} bins  {trial_ms:9.3f} ms/trial  "
            f"{row['trials_per_s']:11.0f} trials/s  max|Δ| {difference:.2e}",
            flush=True,
        )
    return rows


def make_runner(mode, dtype, rates, inputs):
    """A no-argument callable giving the rates of `inputs`; capture and compilation happen here, untimed."""
    if mode == "eager":
        return lambda: rates(inputs)
    if mode == "compile":
        compiled = torch.compile(rates)
        with torch.inference_mode():
            for _ in range(3):
                compiled(inputs)  # compiles now: failures surface here
        return lambda: compiled(inputs)
    static_inputs = inputs.clone()

    def forward():
        # autocast's weight cache must be off inside a CUDA graph (torch docs: CUDA graphs with AMP)
        context = torch.autocast("cuda", dtype=dtype, cache_enabled=False) if dtype else contextlib.nullcontext()
        with context:
            return rates(static_inputs).float()

    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = forward()

    def replay():
        graph.replay()
        return static_output

    return replay


def median_ms(run, repeats, device):
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(WARMUP_CALLS):
        run()
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1e3


def print_table(rows, device):
    print(f"\n{describe(device)}, torch {torch.__version__}; median over repeats, synchronised\n")
    print(
        f"{'model':6s}{'variant':24s}{'bins':>5s}{'ms/trial (b=1)':>16s}{'trials/s (batch)':>20s}{'max|Δ| vs fp32':>16s}"
    )
    for row in rows:
        print(
            f"{row['model']:6s}{row['variant']:24s}{row['bins']:5d}{row['ms_per_trial']:16.3f}"
            f"{row['trials_per_s']:14.0f} ({row['batch']:3d}){row['max_abs_diff']:16.2e}"
        )


def goal_check(rows, device):
    """Best batch-1 NDT vs best batch-1 LFADS at the MC_Maze 5 ms size (140 bins), among variants whose
    rates match fp32 eager to 1e-3 (half precision qualifies only if it does)."""
    at_size = [row for row in rows if row["bins"] == 140 and row["max_abs_diff"] <= 1e-3]
    best = {
        name: min((row for row in at_size if row["model"] == name), key=lambda row: row["ms_per_trial"], default=None)
        for name in ("ndt", "lfads")
    }
    if None in best.values():
        return {}
    speedup = best["lfads"]["ms_per_trial"] / best["ndt"]["ms_per_trial"]
    summary = {
        "ndt": best["ndt"],
        "lfads": best["lfads"],
        "speedup": speedup,
        "ndt_at_most_1ms": best["ndt"]["ms_per_trial"] <= 1.0,
        "at_least_6x": speedup >= 6.0,
    }
    print(
        f"\n140 bins, batch 1: NDT {best['ndt']['ms_per_trial']:.3f} ms ({best['ndt']['variant']}), "
        f"LFADS {best['lfads']['ms_per_trial']:.3f} ms ({best['lfads']['variant']}): NDT {speedup:.1f}x faster"
    )
    if device.type == "cuda":
        print(
            f"goal (set for an H100; this is {describe(device)}): NDT <= 1 ms {'met' if summary['ndt_at_most_1ms'] else 'NOT met'}, "
            f">= 6x LFADS {'met' if summary['at_least_6x'] else 'NOT met'}"
        )
    return summary


def describe(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


if __name__ == "__main__":
    main()
