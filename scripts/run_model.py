"""Train a model on a binned dataset (`train`: writes model.pt), or predict from a trained one
(`predict`: writes output.h5, rates and latents in the submission format). `train-stack` trains several
runs of one model as one stacked model (`--member DATA SEED MODEL_PT` for each), writing each run's
model.pt as `train` would.

The two are separate jobs so that a failed or killed prediction never costs the training: model.pt is
written only when training has finished, and `predict` reads it back. history.csv and the resumable
state (training/) go to model.pt's directory; rerunning the same model on the same data after a kill
resumes from the last checkpoint.
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
    parser.add_argument("step", choices=("train", "predict", "train-stack"))
    parser.add_argument("--data", help="binned dataset (HDF5)")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model", required=True, help="the model's config section as JSON, defaults filled")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--member", nargs=3, action="append", metavar=("DATA", "SEED", "MODEL_PT"),
                        help="train-stack: a run of the stack, its binned dataset, seed and model.pt to write")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init-from", help="model.pt of a finished run whose weights this run starts from")
    parser.add_argument("--trained", help="predict: the model.pt that `train` wrote")
    parser.add_argument("--out", help="train: model.pt to write; predict: output.h5 to write")
    args = parser.parse_args()
    if args.step == "train-stack":
        if not args.member or any(Path(out).name != "model.pt" or not seed.isdigit() for _, seed, out in args.member):
            parser.error("train-stack needs --member DATA SEED MODEL_PT for each run: SEED an integer, MODEL_PT a file model.pt")
    elif args.data is None or args.seed is None or args.out is None:
        parser.error(f"{args.step} needs --data, --seed and --out")
    if args.step == "train" and Path(args.out).name != "model.pt":
        parser.error("train writes the run's model.pt: --out must name a file model.pt")
    if args.step == "predict" and args.trained is None:
        parser.error("predict needs --trained (the model.pt that train wrote)")

    import torch

    from latentdyn.models import pipeline
    from latentdyn.training.device import resolve_device

    torch.set_num_threads(args.threads)
    params = json.loads(args.model)
    device = resolve_device(args.device)
    if args.step == "train-stack":
        members = [pipeline.StackMember(*read_binned(data), data, int(seed), Path(out).parent) for data, seed, out in args.member]
        print(f"train-stack {args.model_name} ({params['kind']}): {len(members)} runs, device {device}", flush=True)
        for path in pipeline.train_stack(params, members, device=device):
            print(f"wrote {path}", flush=True)
        return
    data, attrs = read_binned(args.data)
    run = dict(seed=args.seed, device=device, data_path=args.data, init_from=args.init_from)
    print(f"{args.step} {args.model_name} ({params['kind']}) on {args.data}, seed {args.seed}, device {device}", flush=True)
    if args.step == "train":
        pipeline.train(params, data, attrs, run_dir=Path(args.out).parent, **run)
    else:
        outputs, output_attrs = pipeline.predict(params, data, attrs, model_path=args.trained, **run)
        output_attrs.update(model=args.model_name, dataset=attrs["dataset"], seed=args.seed, model_params=params)
        write_model_output(args.out, outputs, output_attrs, data)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
