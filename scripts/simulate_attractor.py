"""Simulate one chaotic-attractor spiking dataset into the binned-dataset format."""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.attractors import SYSTEMS, make_attractor_dataset
from latentdyn.data.format import write_binned


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--settings", required=True, help="JSON: n_neurons, n_steps, split, seed")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    split = settings["split"]
    print(f"simulating {args.system}: {sum(split.values())} trials x {settings['n_steps']} steps", flush=True)
    arrays, attrs = make_attractor_dataset(
        args.system, settings["n_neurons"], sum(split.values()), settings["n_steps"], split, settings["seed"]
    )
    write_binned(args.out, arrays, attrs)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
