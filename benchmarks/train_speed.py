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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from latentdyn.models.sequential_autoencoder import build_model, make_loss  # noqa: E402
from latentdyn.training.loop import TrainingSettings, resolve_device, train  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(0)
    train_data = torch.poisson(torch.full((1280, 70, 10), 1.5), generator=generator)
    valid_data = torch.poisson(torch.full((320, 70, 10), 1.5), generator=generator)
    for dynamics, solver, latent in [("gru", "rk4", 3), ("gru", "rk4", 100), ("node", "rk4", 3), ("node", "euler", 3), ("node", "rk4", 100)]:
        params = {"latent_size": latent, "encoder_size": 64, "dropout": 0.05, "dynamics": dynamics, "vector_field_size": 128, "solver": solver}
        model = build_model(params, 10, 70)
        settings = TrainingSettings(epochs=args.epochs, batch_size=650, learning_rate=1e-3, log_every=10**6)
        with tempfile.TemporaryDirectory() as run_dir:
            start = time.perf_counter()
            train(model, make_loss(None), train_data, valid_data, settings, run_dir=run_dir, seed=0, device=device)
            seconds = (time.perf_counter() - start) / args.epochs
        label = f"{dynamics}{'/' + solver if dynamics == 'node' else ''} latent {latent}"
        print(f"{device.type:4s} {label:20s} {seconds:7.3f} s/epoch  -> 3000 epochs: {seconds * 3000 / 60:6.1f} min", flush=True)


if __name__ == "__main__":
    main()
