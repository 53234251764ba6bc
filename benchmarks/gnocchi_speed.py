"""GNOCCHI's sampling throughput and training step time (issue 19), CPU or CUDA; not a test.

    python benchmarks/gnocchi_speed.py [--device cpu|cuda] [--threads 2] [--preset gnocchi_demo]
        [--trials 256] [--steps 20 50 1000] [--json PATH]

The model is a preset of config/presets/gnocchi.yaml built for data of its dataset's shape (gnocchi_demo:
the demo reaching set, 35 + 10 bins, 45 held-in and 60 output units; gnocchi_mc_maze_20ms: 35 + 10 bins,
137 / 182 units), untrained (timing does not depend on the weights). Sampling: `--trials` trials
generated at once from random codes by DDIM at each step count (one denoiser call per step for the whole
batch), trials/s, median of 3. Training: one optimiser step (the model's training_step, backward, Adam)
on a batch of the preset's batch size, median of 10 after 2 warm-up steps. On CUDA, time is measured
with synchronisation; the sampler is not graph-captured (diffusers' schedulers step on the host).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from latentdyn.data.prepare import DataShapes  # noqa: E402
from latentdyn.models.kinds import get_kind, resolve_model  # noqa: E402
from latentdyn.training.contract import Batch, Progress  # noqa: E402

SHAPES = {"gnocchi_demo": DataShapes(45, 15, 35, 10), "gnocchi_mc_maze_20ms": DataShapes(137, 45, 35, 10),
          "gnocchi_mc_maze_5ms": DataShapes(137, 45, 140, 40)}


def timed(function, device, repeats):
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="gnocchi_demo", choices=sorted(SHAPES))
    parser.add_argument("--trials", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 50, 1000])
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    presets = yaml.safe_load((REPO / "config" / "presets" / "gnocchi.yaml").read_text())["models"]
    shapes = SHAPES[args.preset]
    implementation = get_kind("gnocchi").implementation()
    results = {"device": str(device), "preset": args.preset, "trials": args.trials}
    for steps in args.steps:
        params = resolve_model(args.preset, {**presets[args.preset], "sample_steps": steps})
        torch.manual_seed(0)
        model = implementation.build(params, shapes).to(device).eval()
        codes = torch.randn(args.trials, params["code_dim"], device=device)
        seconds = timed(lambda: implementation.generate(model, codes), device, 1 if steps > 100 else 3)
        results[f"ddim{steps}_trials_per_s"] = args.trials / seconds
        print(f"DDIM {steps:4d} steps: {args.trials / seconds:9.1f} trials/s ({seconds:.3f} s for {args.trials})")
    params = resolve_model(args.preset, presets[args.preset])
    torch.manual_seed(0)
    model = implementation.build(params, shapes).to(device).train()
    model.fit_signal(torch.poisson(torch.ones(64, shapes.n_recon_bins, shapes.n_output)))
    model.to(device)
    counts = torch.poisson(torch.ones(params["batch_size"], shapes.n_recon_bins, shapes.n_output)).to(device)
    batch = Batch(counts[:, : shapes.n_bins, : shapes.n_input], counts, torch.arange(len(counts), device=device))
    optimiser = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"])

    def step():
        optimiser.zero_grad()
        model.training_step(batch, Progress(0, 1)).loss.backward()
        optimiser.step()

    timed(step, device, 2)
    seconds = timed(step, device, 10)
    results["train_step_ms"] = 1000 * seconds
    print(f"training step (batch {params['batch_size']}): {1000 * seconds:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
