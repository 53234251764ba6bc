"""Score a stitched run per session beyond the submission metrics (latentdyn.metrics.multisession):
velocity decoding from its factors within and across sessions, from smoothed spikes, and each session's
validation NLL. Writes one CSV row per session.

    python scripts/multisession_decoding.py --stitched stitched.h5 --stitched-output output.h5 \
        --sessions s00.h5 s01.h5 ... --session-outputs s00_output.h5 s01_output.h5 ... \
        --dataset reaching_ms_20ms --model stitched --seed 0 --out decoding.csv
"""

import argparse

import _bootstrap  # noqa: F401
import pandas as pd

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output
from latentdyn.errors import InputError
from latentdyn.io import atomic_path
from latentdyn.metrics.multisession import decoding_rows, session_trials, validation_nll


@main_guard
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stitched", required=True, help="the stitched binned dataset")
    parser.add_argument("--stitched-output", required=True, help="the stitched run's output.h5")
    parser.add_argument("--sessions", nargs="+", required=True, help="each session's binned dataset, in order")
    parser.add_argument("--session-outputs", nargs="+", required=True, help="each session's part of the run (<model>-S)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if len(args.sessions) != len(args.session_outputs):
        raise InputError("--session-outputs", "<list>", f"{len(args.session_outputs)} outputs for {len(args.sessions)} sessions")
    trials = []
    for data_path, output_path in zip(args.sessions, args.session_outputs):
        data, attrs = read_binned(data_path)
        if "train_behavior" not in data:
            raise InputError(data_path, "train_behavior", "missing; velocity decoding needs behaviour")
        output, _ = read_model_output(output_path)
        if "latents/train_factors" not in output:
            raise InputError(output_path, "latents/train_factors", "missing; decoding reads the model's factors")
        trials.append(session_trials(data, attrs, output))
    stitched, stitched_attrs = read_binned(args.stitched)
    stitched_output, _ = read_model_output(args.stitched_output)
    table = pd.DataFrame(decoding_rows(trials))
    table["valid_nll"] = validation_nll(stitched, stitched_attrs, stitched_output)
    table.insert(0, "seed", args.seed)
    table.insert(0, "model", args.model)
    table.insert(0, "dataset", args.dataset)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(), flush=True)


if __name__ == "__main__":
    main()
