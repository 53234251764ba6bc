"""Simulate staggered-scan two-photon calcium imaging into two binned datasets: sub-frame and frame bins."""

import argparse
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import write_binned
from latentdyn.data.two_photon import make_two_photon_datasets


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", required=True, help="JSON: make_two_photon_datasets' keyword arguments")
    parser.add_argument("--out-subframe", required=True)
    parser.add_argument("--out-frame", required=True)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    print(f"simulating two-photon imaging with {settings}", flush=True)
    datasets = make_two_photon_datasets(**settings)
    for resolution, path in (("subframe", args.out_subframe), ("frame", args.out_frame)):
        write_binned(path, *datasets[resolution])
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
