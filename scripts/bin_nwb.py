"""Bin NWB files into a binned dataset (docs/formats.md), as nlb_tools would cut them.

    python scripts/bin_nwb.py --nwb train.nwb [test.nwb] --dataset mc_maze --bin-ms 5 --phase val \
        --out results/data/binned/mc_maze.h5 [--truth truth.h5] [--spec-json '{"align_field": ...}']

Without --spec or --spec-json, --dataset must be an NLB dataset name; --spec bins a dataset as a
named NLB dataset (the simulated reaching task as mc_maze). --manifest takes the NWB list of a download. Bad input exits 2 with one line on stderr.
"""

import argparse
import dataclasses
import json
import logging
import sys
import time

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.dandi_download import manifest_nwb_paths
from latentdyn.data.format import write_binned
from latentdyn.data.nlb import PHASES, make_binned_tensors
from latentdyn.data.nlb_specs import USER_SPEC_KEYS, dataset_spec, user_spec
from latentdyn.errors import InputError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--nwb", nargs="+", help="NWB file(s) of one dataset")
    source.add_argument("--manifest", help="manifest.json of a downloaded or registered dandiset")
    parser.add_argument("--dataset", required=True, help="NLB dataset name, or the user dataset's name")
    parser.add_argument("--bin-ms", type=int, required=True)
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("--out", required=True, help="binned dataset to write (.h5)")
    parser.add_argument("--truth", help="ground-truth sidecar (timestamps, rates, latents)")
    spec = parser.add_mutually_exclusive_group()
    spec.add_argument("--spec", help="bin as this NLB dataset (e.g. mc_maze for a simulated maze task)")
    spec.add_argument("--spec-json", help=f"user dataset spec, a JSON object with {sorted(USER_SPEC_KEYS)}")
    return parser.parse_args(argv)


@main_guard
def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bin_nwb: %(message)s", stream=sys.stdout)
    started = time.perf_counter()
    if args.spec_json:
        try:
            config = json.loads(args.spec_json)
        except json.JSONDecodeError as error:
            raise InputError("--spec-json", "<json>", f"not valid JSON ({error})") from None
        spec = user_spec(args.dataset, config, source="--spec-json")
    elif args.spec:
        spec = dataclasses.replace(dataset_spec(args.spec), name=args.dataset)
    else:
        spec = dataset_spec(args.dataset)
    nwb_paths = args.nwb or manifest_nwb_paths(args.manifest)
    arrays, attrs = make_binned_tensors(nwb_paths, spec, args.bin_ms, args.phase, truth_path=args.truth)
    write_binned(args.out, arrays, attrs)
    print(f"bin_nwb: wrote {args.out} ({len(arrays['train_trial_ids'])} train, "
          f"{len(arrays['eval_trial_ids'])} eval trials) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
