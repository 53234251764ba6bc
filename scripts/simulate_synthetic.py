"""Simulate one condition-structured synthetic dataset (SBTT demo Lorenz, chaotic RNN) into the binned format."""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.chaotic_rnn import make_chaotic_rnn_dataset
from latentdyn.data.format import write_binned
from latentdyn.data.sbtt_lorenz import make_sbtt_lorenz_dataset

GENERATORS = {"sbtt_lorenz": make_sbtt_lorenz_dataset, "chaotic_rnn": make_chaotic_rnn_dataset}


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generator", required=True, choices=sorted(GENERATORS))
    parser.add_argument("--settings", required=True, help="JSON: the generator's keyword arguments (config section)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    print(f"simulating {args.generator} with {settings}", flush=True)
    arrays, attrs = GENERATORS[args.generator](**settings)
    write_binned(args.out, arrays, attrs)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
