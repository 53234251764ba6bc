"""Train a model on a binned dataset and write its output (rates, latents) in the submission format.

Checkpoints, history.csv and the output go to the output file's directory; rerunning after a kill
resumes from the last checkpoint.
"""

import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, write_model_output
from latentdyn.models.registry import get_model_kind


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="binned dataset (HDF5)")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model", required=True, help="the model's config section as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="output.h5 to write")
    args = parser.parse_args()

    import torch

    from latentdyn.training.loop import resolve_device

    torch.set_num_threads(args.threads)
    params = json.loads(args.model)
    device = resolve_device(args.device)
    data, attrs = read_binned(args.data)
    print(f"training {args.model_name} ({params['kind']}) on {args.data}, seed {args.seed}, device {device}", flush=True)
    fit_predict = get_model_kind(params["kind"])
    outputs = fit_predict(data, attrs, params, run_dir=Path(args.out).parent, seed=args.seed, device=device)
    write_model_output(
        args.out,
        outputs,
        {"model": args.model_name, "dataset": attrs["dataset"], "seed": args.seed, "model_params": params},
    )
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
