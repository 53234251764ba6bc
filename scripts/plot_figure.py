"""Draw one paper figure (PNG + PDF). Subcommands name the figure kind; see workflow/rules/figures.smk."""

import argparse

import _bootstrap  # noqa: F401
import h5py
import numpy as np
import pandas as pd

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output
from latentdyn.plots import attractors, nlb
from latentdyn.plots.common import save_figure


def _run_name(output_path):
    return output_path.split("/")[-3]


def _read_fixed_points(path):
    with h5py.File(path, "r") as f:
        return f["points"][()], f["eigvals_real"][()] + 1j * f["eigvals_imag"][()]


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="figure", required=True)
    example = sub.add_parser("example-data")
    example.add_argument("--data", required=True)
    metric = sub.add_parser("metric-vs-latent")
    metric.add_argument("--table", required=True)
    metric.add_argument("--metric", required=True)
    for name in ("trajectories", "eigenvalues"):
        fixed = sub.add_parser(name)
        fixed.add_argument("--data", required=True)
        fixed.add_argument("--outputs", nargs="+", required=True, help="run output.h5 files")
        fixed.add_argument("--fixed-points", nargs="+", required=True, help="matching fixed_points.h5 files")
    bars = sub.add_parser("nlb-metrics")
    bars.add_argument("--table", required=True)
    for p in sub.choices.values():
        p.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    args = parser.parse_args()

    if args.figure == "example-data":
        data, attrs = read_binned(args.data)
        fig = attractors.plot_example_data(data, attrs["dataset"])
    elif args.figure == "metric-vs-latent":
        fig = attractors.plot_metric_vs_latent(pd.read_csv(args.table), args.metric)
    elif args.figure == "nlb-metrics":
        fig = nlb.plot_nlb_metrics(pd.read_csv(args.table))
    else:
        data, attrs = read_binned(args.data)
        fixed = [_read_fixed_points(path) for path in args.fixed_points]
        if args.figure == "trajectories":
            runs = [
                (_run_name(path), read_model_output(path)[0]["eval_latents"], points)
                for path, (points, _) in zip(args.outputs, fixed)
            ]
            fig = attractors.plot_latent_trajectories(data, runs, attrs["dataset"])
        else:
            runs = [(_run_name(path), np.asarray(eig)) for path, (_, eig) in zip(args.outputs, fixed)]
            fig = attractors.plot_fixed_point_eigenvalues(data, runs, attrs["dataset"])
    save_figure(fig, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
