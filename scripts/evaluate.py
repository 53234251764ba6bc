"""Score a model output file against its binned dataset; write metrics.json."""

import argparse
from pathlib import Path

import _bootstrap  # noqa: F401

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output
from latentdyn.io import write_json
from latentdyn.metrics.evaluate import evaluate_run


@main_guard
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True, help="model output.h5")
    parser.add_argument("--test-targets", help="nlb_tools' eval_data_test.h5, for the NLB test phase")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    args = parser.parse_args()
    data, attrs = read_binned(args.data)
    if args.test_targets:
        from latentdyn.metrics.nlb import load_test_targets

        data.update(load_test_targets(args.test_targets, attrs["dataset"], round(attrs["bin_width_s"] * 1000)))
    output, output_attrs = read_model_output(args.output)
    metrics = evaluate_run(data, attrs, output, args.data, args.output, output_attrs)
    # the binned file's name (e.g. mc_maze_20ms) tells bin sizes of one recording apart
    metrics.update(dataset=Path(args.data).stem, model=output_attrs["model"], seed=int(output_attrs["seed"]))
    metrics["latent_size"] = output_attrs["model_params"].get("latent_size")
    if "bandwidth" in attrs:  # a bandwidth-masked dataset (SBTT): channels observed per trial and bin
        channels = data["train_spikes_heldin"].shape[-1]
        metrics.update(bandwidth=int(attrs["bandwidth"]), dropped_fraction=1 - int(attrs["bandwidth"]) / channels)
    if "resolution" in attrs:  # two-photon: sub-frame or frame bins
        metrics["resolution"] = attrs["resolution"]
    write_json(args.out, metrics)
    print(metrics, flush=True)


if __name__ == "__main__":
    main()
