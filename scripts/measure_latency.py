"""Time the latency study's models: per trial at batch 1 and batched, against the number of bins, on one
device; write the table (docs/formats.md, results/tables/latency.csv)."""

import argparse
import csv
import json

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.io import atomic_path


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", required=True, help="JSON: config name -> the model's config, defaults filled")
    parser.add_argument("--settings", required=True, help="JSON: n_heldin, n_heldout, bins, batch, repeats")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args()

    import torch

    from latentdyn.metrics.latency import COLUMNS, measure_latency, row_line
    from latentdyn.training.device import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"timing on {device}, torch {torch.__version__}", flush=True)
    rows = []
    for row in measure_latency(json.loads(args.models), device, **json.loads(args.settings)):
        print(row_line(row), flush=True)
        rows.append(row)
    with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
