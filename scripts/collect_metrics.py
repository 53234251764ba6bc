"""Gather metrics.json files into one CSV table (one row per run)."""

import argparse
import json

import _bootstrap  # noqa: F401
import pandas as pd

from latentdyn.cli import main_guard
from latentdyn.io import atomic_path, reading

LEADING = ["dataset", "model", "latent_size", "seed"]


def read_metrics(path):
    with reading(path, "metrics file"), open(path) as f:
        return json.load(f)


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("metrics", nargs="+")
    args = parser.parse_args()
    table = pd.DataFrame([read_metrics(path) for path in args.metrics])
    table = table[LEADING + sorted(c for c in table.columns if c not in LEADING)]
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(), flush=True)


if __name__ == "__main__":
    main()
