"""Cut a binned dataset down to n of its training trials (fully observed pretraining data for SBTT)."""

import argparse

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.subsets import keep_train_trials, subset_attrs


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="binned dataset to cut down")
    parser.add_argument("--n-trials", required=True, type=int, help="training trials to keep")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrays, attrs = read_binned(args.data)
    subset = keep_train_trials(arrays, args.n_trials, args.seed, path=args.data)
    write_binned(args.out, subset, subset_attrs(attrs, args.n_trials, args.seed, source=args.data))
    print(f"wrote {args.out}: {args.n_trials} of {len(arrays['train_spikes_heldin'])} training trials", flush=True)


if __name__ == "__main__":
    main()
