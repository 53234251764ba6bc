"""Mask a binned dataset to a recording bandwidth: `bandwidth` held-in channels observed per trial and bin."""

import argparse

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, write_binned
from latentdyn.data.masks import apply_bandwidth, bandwidth_attrs


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="binned dataset to mask")
    parser.add_argument("--bandwidth", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrays, attrs = read_binned(args.data)
    masked = apply_bandwidth(arrays, args.bandwidth, args.seed, path=args.data)
    write_binned(args.out, masked, bandwidth_attrs(attrs, args.bandwidth, args.seed, source=args.data))
    print(f"wrote {args.out}: bandwidth {args.bandwidth} of {arrays['train_spikes_heldin'].shape[-1]} channels",
          flush=True)


if __name__ == "__main__":
    main()
