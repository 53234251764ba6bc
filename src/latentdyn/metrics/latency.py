"""Inference latency of models whose kind has an inference entry point (capability realtime_inference):
time per trial at batch 1, what a real-time decoder sees, and throughput of a batch, against the number
of bins.

Timed correctly: warm-up calls first (lazy initialisation, allocator, kernel selection), then the median
of many calls with their quartiles, the device synchronised around each (CUDA launches are asynchronous: unsynchronised, one
times the launch, not the work). On CUDA further variants are tried: the forward captured in a CUDA graph
(no launch cost per kernel), torch.compile where the kind says it compiles quickly (compiled_inference),
and bf16 / fp16 autocast inside the graph. Every variant reports the largest difference of its rates
from the fp32 eager ones, so "same outputs" is checked, not assumed. A variant whose rates, at batch 1
or at the throughput batch, differ by more than its tolerance computes something else: it is left out
of the table and the figure with a note naming it, never timed as if it were the model
(metrics/latency_goal.py further counts only variants within fp32's tolerance).
"""

import contextlib
import sys
import time

import numpy as np
import torch

from latentdyn.data.prepare import DataShapes
from latentdyn.metrics.latency_goal import SAME_RATES_TOLERANCE
from latentdyn.models.kinds import require_capability

COLUMNS = ["model", "kind", "variant", "bins", "ms_per_trial", "ms_per_trial_q25", "ms_per_trial_q75", "trials_per_s",
           "trials_per_s_q25", "trials_per_s_q75", "throughput_batch", "max_abs_diff", "device"]
CAPABILITY = "realtime_inference"  # the kind's model module has infer_rates
STUDY_KEY = "latency_study.models"
WARMUP_CALLS = 10
FORWARD_BINS_PER_BIN = 40 / 140  # MC_Maze at 5 ms: 40 forward bins after a 140-bin window
MEAN_COUNT = 0.3  # spikes per bin of the random input; the time does not depend on the values
# bf16 keeps 8 bits of mantissa (relative rounding 2^-8 ≈ 0.4 %) per operation: a few per cent of the
# largest rate allows for the rounding accumulated through a forward pass, not for a wrong computation.
HALF_PRECISION_TOLERANCE = 0.05


def measure_latency(models, device, n_heldin, n_heldout, bins, batch, repeats):
    """Yield one row (COLUMNS) per bin count, model and variant. `models`: config name -> the model's
    resolved params. Seeded, so every run times the same weights and inputs."""
    for name, params in models.items():
        require_capability(name, params, CAPABILITY, STUDY_KEY)  # before any timing
    torch.manual_seed(0)
    for n_bins in bins:
        shapes = DataShapes(n_heldin, n_heldout, n_bins, round(n_bins * FORWARD_BINS_PER_BIN))
        trial, trials = (random_counts(n_trials, shapes, device) for n_trials in (1, batch))
        for name, params in models.items():
            yield from time_variants(name, params, shapes, trial, trials, device, repeats)


def random_counts(n_trials, shapes, device):
    """Poisson counts of the held-in units over the window: a stand-in for recorded trials."""
    return torch.poisson(torch.full((n_trials, shapes.n_bins, shapes.n_input), MEAN_COUNT)).to(device)


def inference(name, params, shapes, device):
    """(kind, rates function) of model `name` built at `shapes` in eval mode, through its kind."""
    kind = require_capability(name, params, CAPABILITY, STUDY_KEY)
    implementation = kind.implementation()
    model = implementation.build(params, shapes).to(device).eval()
    return kind, lambda encoder_input: implementation.infer_rates(model, encoder_input)


def variants(kind, device):
    """(name, mode, autocast dtype) to time: fp32 eager everywhere, the graph, compiled and half-precision
    variants on CUDA (compiled only where the kind compiles quickly)."""
    found = [("fp32 eager", "eager", None)]
    if device.type == "cuda":
        found.append(("fp32 cuda graph", "graph", None))
        if "compiled_inference" in kind.capabilities:
            found.append(("fp32 compile", "compile", None))
        found += [("bf16 autocast + graph", "graph", torch.bfloat16), ("fp16 autocast + graph", "graph", torch.float16)]
    return found


def time_variants(name, params, shapes, trial, trials, device, repeats):
    """One row per variant of model `name`: batch-1 latency and throughput at the batch of `trials`, each
    as median and quartiles over calls, and the largest |rates - fp32 eager rates|. A variant that cannot
    be built here is skipped with a note."""
    kind, rates = inference(name, params, shapes, device)
    with torch.inference_mode():
        references = rates(trial), rates(trials)
    for variant, mode, dtype in variants(kind, device):
        try:
            per_trial, per_batch = (make_runner(mode, dtype, rates, inputs) for inputs in (trial, trials))
        except Exception as error:  # torch.compile or graph capture unavailable here: say so, go on
            note(name, variant, shapes, f"skipped: {type(error).__name__}: {str(error)[:200]}")
            continue
        with torch.inference_mode():
            difference, batch_difference = ((run() - reference).abs().max().item()
                                            for run, reference in zip((per_trial, per_batch), references))
        allowed = tolerance(dtype, references[0])
        if not max(difference, batch_difference) <= allowed:  # NaN fails too
            note(name, variant, shapes, f"left out: its rates differ from fp32 eager by {difference:.3g} at "
                 f"batch 1 and {batch_difference:.3g} at batch {trials.shape[0]} (tolerance {allowed:.3g})")
            continue
        with torch.inference_mode():
            trial_ms = quartiles_ms(per_trial, repeats, device)
            batch_ms = quartiles_ms(per_batch, max(repeats // 10, 3), device)
        per_s = trials.shape[0] * 1e3 / batch_ms[::-1]  # the slowest quarter of calls gives the lowest throughput
        yield {
            "model": name,
            "kind": kind.name,
            "variant": variant,
            "bins": shapes.n_bins,
            **dict(zip(["ms_per_trial_q25", "ms_per_trial", "ms_per_trial_q75"], trial_ms.tolist())),
            **dict(zip(["trials_per_s_q25", "trials_per_s", "trials_per_s_q75"], per_s.tolist())),
            "throughput_batch": trials.shape[0],
            "max_abs_diff": difference,
            "device": describe_device(device),
        }


def tolerance(dtype, reference):
    """Largest |rates − fp32 eager rates| of a variant computing the same thing: fp32's (absolute) for
    fp32 variants, HALF_PRECISION_TOLERANCE of the largest rate under half-precision autocast."""
    if dtype is None:
        return SAME_RATES_TOLERANCE
    return HALF_PRECISION_TOLERANCE * reference.abs().max().item()


def note(name, variant, shapes, what):
    print(f"note: {name} {variant} at {shapes.n_bins} bins {what}", file=sys.stderr, flush=True)


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


def quartiles_ms(run, repeats, device):
    """Lower quartile, median and upper quartile (an array) of the milliseconds of `repeats` calls of `run`
    after WARMUP_CALLS untimed ones, the device synchronised before each clock read so that the work, not
    its launch, is timed. The quartiles say how much the calls varied, which a median alone hides."""
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
    return np.percentile(seconds, [25, 50, 75]) * 1e3


def describe_device(device):
    """The GPU's name, or the CPU with the threads torch uses: what the times depend on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads > 1 else ''}"


def row_line(row):
    """One timing row as a line of a log."""
    return (
        f"{row['model']:20s} {row['variant']:22s} {row['bins']:4d} bins  {row['ms_per_trial']:9.3f} ms/trial  "
        f"(IQR {row['ms_per_trial_q25']:.3f}–{row['ms_per_trial_q75']:.3f})  {row['trials_per_s']:11.0f} trials/s "
        f"(batch {row['throughput_batch']})  max|Δ| {row['max_abs_diff']:.2e}"
    )
