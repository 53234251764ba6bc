"""Derive a binned dataset by choosing its training trials (latentdyn.data.subsets): n of them
(`--n-trials`, fully observed pretraining data for SBTT, small training sets), or all but those of
withheld conditions (`--withhold`, moved to the evaluation split: the generative study's unseen
conditions)."""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.subsets import keep_train_trials, subset_attrs, withhold_conditions


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="binned dataset to derive from")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--n-trials", type=int, help="training trials to keep (a seeded random draw)")
    choice.add_argument("--withhold", type=json.loads,
                        help="JSON: conditions to withhold, a count (spread over reach angle) or a list of names")
    parser.add_argument("--seed", type=int, help="the draw's seed (with --n-trials)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrays, attrs = read_binned(args.data)
    n_train = len(arrays["train_spikes_heldin"])
    if args.n_trials is not None:
        if args.seed is None:
            parser.error("--n-trials needs --seed")
        write_binned(args.out, keep_train_trials(arrays, args.n_trials, args.seed, path=args.data),
                     subset_attrs(attrs, args.n_trials, args.seed, source=args.data))
        print(f"wrote {args.out}: {args.n_trials} of {n_train} training trials", flush=True)
    else:
        derived, derived_attrs = withhold_conditions(arrays, attrs, args.withhold, path=args.data)
        write_binned(args.out, derived, derived_attrs)
        print(f"wrote {args.out}: withheld {derived_attrs['withheld_conditions']}, {derived_attrs['n_train_moved']}"
              f" of {n_train} training trials moved to the evaluation split", flush=True)


if __name__ == "__main__":
    main()
