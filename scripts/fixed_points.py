"""Find fixed points of a trained model's latent dynamics (kinds with `latent_dynamics`); write fixed_points.h5."""

import argparse
import json

import _bootstrap  # noqa: F401
import h5py
import numpy as np

from latentdyn.cli import main_guard
from latentdyn.errors import InputError
from latentdyn.data.format import read_model_output, state_latents
from latentdyn.io import atomic_path


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", required=True, help="the run's output.h5 (model.pt beside it)")
    parser.add_argument("--settings", required=True, help="JSON: n_starts, max_iterations, tolerance, learning_rate")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from latentdyn.metrics.fixed_points import find_fixed_points
    from latentdyn.models.kinds import get_kind
    from latentdyn.models.pipeline import load_trained

    torch.set_num_threads(1)
    settings = json.loads(args.settings)
    outputs, attrs = read_model_output(args.output)
    if "latent_dynamics" not in get_kind(attrs["kind"]).capabilities:
        raise InputError(args.output, "kind", f"model kind '{attrs['kind']}' has no latent dynamics to analyse")
    trajectories = state_latents(outputs, attrs, "train")
    model, _ = load_trained(args.output)
    found = find_fixed_points(
        model.dynamics,
        trajectories,
        n_starts=settings["n_starts"],
        max_iterations=settings["max_iterations"],
        tolerance=settings["tolerance"],
        learning_rate=settings["learning_rate"],
    )
    print(f"{len(found.points)} fixed points; speeds {np.round(found.speed, 12).tolist()}", flush=True)
    with atomic_path(args.out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("points", data=found.points)
        f.create_dataset("speed", data=found.speed)
        f.create_dataset("eigvals_real", data=found.eigvals.real)
        f.create_dataset("eigvals_imag", data=found.eigvals.imag)


if __name__ == "__main__":
    main()
