"""Train a model on a binned dataset and write its output (rates, latents) in the submission format.

history.csv, the resumable state (training/) and the final model.pt go to the output file's directory;
rerunning the same model on the same data after a kill resumes from the last epoch.
"""

import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, write_model_output


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="binned dataset (HDF5)")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model", required=True, help="the model's config section as JSON, defaults filled")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init-from", help="model.pt of a finished run whose weights this run starts from")
    parser.add_argument("--out", required=True, help="output.h5 to write")
    args = parser.parse_args()

    import torch

    from latentdyn.models.run import train_and_predict
    from latentdyn.training.trainer import resolve_device

    torch.set_num_threads(args.threads)
    params = json.loads(args.model)
    device = resolve_device(args.device)
    data, attrs = read_binned(args.data)
    print(f"training {args.model_name} ({params['kind']}) on {args.data}, seed {args.seed}, device {device}", flush=True)
    outputs, output_attrs = train_and_predict(
        params, data, attrs, run_dir=Path(args.out).parent, seed=args.seed, device=device, data_path=args.data,
        init_from=args.init_from,
    )
    output_attrs.update(model=args.model_name, dataset=attrs["dataset"], seed=args.seed, model_params=params)
    write_model_output(args.out, outputs, output_attrs, data)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
