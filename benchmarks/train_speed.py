"""Seconds per training epoch of the sequential autoencoder at paper scale (not a test).

    python benchmarks/train_speed.py [--device auto] [--epochs 5] [--threads 1]

Paper scale: 1280 training trials x 70 steps x 10 neurons, batch 650, encoder 64, NODE vector field
128 (Sedler et al. 2023). Prints one line per configuration.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentdyn.data.prepare import prepare  # noqa: E402
from latentdyn.models.kinds import resolve_model  # noqa: E402
from latentdyn.models.sequential_autoencoder.model import build  # noqa: E402
from latentdyn.training.checkpoints import run_identity  # noqa: E402
from latentdyn.training.device import resolve_device  # noqa: E402
from latentdyn.training.trainer import TrainerSettings, fit  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    arrays = {f"{split}_spikes_heldin": rng.poisson(1.5, size=(n, 70, 10)).astype(np.float32) for split, n in (("train", 1280), ("valid", 320), ("eval", 320))}
    prepared = prepare(arrays, {"dataset": "speed", "bin_width_s": 0.01}, valid_fraction=None, seed=0)
    for dynamics, solver, latent in [("gru", "rk4", 3), ("gru", "rk4", 100), ("node", "rk4", 3), ("node", "euler", 3), ("node", "rk4", 100)]:
        params = resolve_model(
            "speed",
            {"kind": "sequential_autoencoder", "dynamics": dynamics, "latent_size": latent, "solver": solver,
             "learning_rate": 1e-3, "epochs": args.epochs, "log_every": 10**6},
        )
        model = build(params, prepared.shapes)
        with tempfile.TemporaryDirectory() as run_dir:
            start = time.perf_counter()
            fit(model, prepared, TrainerSettings.from_params(params), run_dir=run_dir, seed=0, device=device, identity="speed")
            seconds = (time.perf_counter() - start) / args.epochs
        label = f"{dynamics}{'/' + solver if dynamics == 'node' else ''} latent {latent}"
        print(f"{device.type:4s} {label:20s} {seconds:7.3f} s/epoch  -> 3000 epochs: {seconds * 3000 / 60:6.1f} min", flush=True)


if __name__ == "__main__":
    main()
