"""Write the NLB submission: every dataset's predictions from its best run (metrics.submission), checked
for the leaderboard's groups, keys and shapes, and scored by the project's NLB metrics where the
held-out targets are known; a CSV says which run each group came from and what it scored."""

import argparse
import re
import sys
from pathlib import Path

import _bootstrap  # noqa: F401
import h5py
import pandas as pd

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output
from latentdyn.errors import InputError
from latentdyn.io import atomic_path, reading
from latentdyn.metrics.nlb import evaluate_submission, load_test_targets, nlb_group_name
from latentdyn.metrics.submission import (
    SELECT_BY,
    best_runs,
    check_submission,
    read_submission,
    submission_group,
    write_submission,
)

BINNED_NAME = re.compile(r"^(?P<dataset>.+)_(?P<bin_ms>[0-9]+)ms$")  # <dataset>_<bin>ms, the NLB study's


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="the NLB study's table (results/tables/nlb_study.csv)")
    parser.add_argument("--data", nargs="+", required=True, help="the study's binned datasets (<dataset>_<bin>ms.h5)")
    parser.add_argument("--runs", required=True, help="directory of the runs (results/runs)")
    parser.add_argument("--test-targets", help="nlb_tools' eval_data_test.h5, to score the test phase")
    parser.add_argument("--out", required=True, help="submission HDF5 to write")
    parser.add_argument("--summary", required=True, help="CSV: per group, the run chosen and its scores")
    args = parser.parse_args()
    with reading(args.table, "NLB study table"):
        table = pd.read_csv(args.table)
    best = best_runs(table, path=args.table).set_index("dataset")
    test_groups = set()
    if args.test_targets:
        with reading(args.test_targets, "test targets file"), h5py.File(args.test_targets, "r") as f:
            test_groups = set(f)
    groups, datasets, rows = {}, {}, []
    for data_path in args.data:
        binned = Path(data_path).stem
        match = BINNED_NAME.match(binned)
        if match is None or binned not in best.index:
            raise InputError(data_path, "<file name>", f"not a <dataset>_<bin>ms dataset of the table {args.table}")
        data, attrs = read_binned(data_path)
        group = nlb_group_name(match["dataset"], int(match["bin_ms"]))
        if group in test_groups:
            data.update(load_test_targets(args.test_targets, attrs["dataset"], int(match["bin_ms"])))
        run = best.loc[binned]
        output_path = Path(args.runs) / binned / run["model"] / f"seed{int(run['seed'])}" / "output.h5"
        output, _ = read_model_output(output_path)
        groups[group], datasets[group] = submission_group(output, group, output_path), data
        row = {"group": group, "dataset": binned, "model": run["model"], "seed": int(run["seed"]),
               f"selected by {SELECT_BY}": run[SELECT_BY], "phase": attrs["phase"]}
        if "eval_spikes_heldout" in data:
            row.update(evaluate_submission(data, groups[group], match["dataset"], submission_path=f"{args.out}:{group}"))
        else:
            print(f"{group}: not scored: no held-out targets (test phase without --test-targets)", file=sys.stderr)
        rows.append(row)
    write_submission(args.out, groups)
    check_submission(read_submission(args.out), datasets, args.out)  # what was written, read back
    with atomic_path(args.summary) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    chosen = ", ".join(f"{row['group']} ({row['model']})" for row in rows)
    print(f"wrote {args.out}: {chosen}", flush=True)


if __name__ == "__main__":
    main()
