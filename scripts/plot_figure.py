"""Draw one paper figure (PNG + PDF). Subcommands name the figure kind; see workflow/rules/figures.smk."""

import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401
import h5py
import numpy as np
import pandas as pd

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output, state_latents
from latentdyn.errors import InputError
from latentdyn.io import reading
from latentdyn.plots import attractors, generation, latency, multisession, nlb, overfitting, run_figures, sbtt
from latentdyn.plots.common import save_figure


def _run_name(output_path):
    return output_path.split("/")[-3]


def _read_fixed_points(path):
    with reading(path, "fixed points file"), h5py.File(path, "r") as f:
        return f["points"][()], f["eigvals_real"][()] + 1j * f["eigvals_imag"][()]


def _factors_by_condition(data_path, output_path):
    """A session's training-trial factors and each trial's condition name (multisession-factors)."""
    data, attrs = read_binned(data_path, keys=["train_spikes_heldin", "train_cond_idx"])
    if "train_cond_idx" not in data or "conditions" not in attrs:
        raise InputError(data_path, "train_cond_idx", "missing; the factors figure averages factors by condition")
    output, _ = read_model_output(output_path)
    _, factors = _first_present(output, output_path, ["latents/train_factors"], "the figure draws the model's factors")
    labels = np.full(len(factors), "", dtype=object)
    for name, trials in zip(attrs["conditions"], data["train_cond_idx"]):
        labels[np.asarray(trials, dtype=int)] = name
    return factors[labels != ""], labels[labels != ""]


# Per-run figures (a kind's kind.yaml `figures`): each reads its files and returns a Figure; a missing key or
# file stops with an InputError naming both.


def _first_present(arrays, path, keys, why):
    """The first of `keys` in `arrays` as (key, array); an InputError naming `path` and the first key else."""
    for key in keys:
        if key in arrays:
            return key, np.asarray(arrays[key])
    others = f" (nor {', '.join(keys[1:])})" if len(keys) > 1 else ""
    raise InputError(path, keys[0], f"missing{others}; {why}")


def _three_d(path, key, value):
    if value.ndim != 3:
        raise InputError(path, key, f"shape {value.shape}, expected (trials, bins, channels)")
    return value


def _output_attrs(path):
    """A model output's root attributes, without reading its arrays."""
    if not Path(path).exists():
        raise InputError(path, "<file>", "model output does not exist")
    with reading(path, "model output"), h5py.File(path, "r") as f:
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in f.attrs.items()}
    for key, value in attrs.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                attrs[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return attrs


def _run_title(attrs, path):
    """Figure title "<dataset>: <model> (seed <s>)", names from the run directory (<dataset>/<model>/seed<s>/)."""
    parts = Path(path).parts
    dataset, model = (parts[-4], parts[-3]) if len(parts) >= 4 else (attrs.get("dataset"), attrs.get("model"))
    return f"{dataset}: {model}" + (f" (seed {attrs['seed']})" if "seed" in attrs else "")


def _window_start(attrs):
    """(start of the model-input window in ms from its alignment event, the event's name) from the binned
    dataset's spec; (None, "window start") when the dataset has no window aligned by offsets."""
    spec = attrs.get("spec")
    if not isinstance(spec, dict):
        return None, "window start"
    window = spec.get("window") if isinstance(spec.get("window"), dict) else spec
    offsets = window.get("offsets_ms") or window.get("window_ms")
    if not offsets:
        return None, "window start"
    event = str(window.get("align_field", "alignment")).removesuffix("_time").replace("_", " ")
    return float(offsets[0]), event


def _rates_vs_truth(args):
    output, out_attrs = read_model_output(args.output)
    keys = [f"eval_true_rates_{group}" for group in ("heldin", "heldout")]
    data, attrs = read_binned(args.data, keys=keys)
    true, inferred, labels = [], [], []
    for group in ("heldin", "heldout"):
        truth_key, rates_key = f"eval_true_rates_{group}", f"eval_rates_{group}"
        if group == "heldout" and (truth_key not in data or rates_key not in output):
            continue
        _, truth = _first_present(data, args.data, [truth_key], "the rates figure needs ground-truth rates")
        _, rates = _first_present(output, args.output, [rates_key], "the model's inferred eval rates")
        if _three_d(args.data, truth_key, truth).shape != rates.shape:
            raise InputError(args.output, rates_key, f"shape {rates.shape}, expected {truth.shape} as "
                                                     f"{truth_key} of {args.data}")
        true.append(truth)
        inferred.append(rates)
        labels += [f"{group.replace('held', 'held-')} unit {i}" for i in range(truth.shape[-1])]
    start, _ = _window_start(attrs)
    return run_figures.plot_rates_vs_truth(np.concatenate(true, axis=-1), np.concatenate(inferred, axis=-1),
                                           attrs["bin_width_s"], _run_title(out_attrs, args.output),
                                           start_ms=start or 0.0, neuron_labels=labels)


def _factors(args):
    output, out_attrs = read_model_output(args.output)
    key, factors = _first_present(output, args.output, ["latents/eval_factors", "latents/train_factors"],
                                  "the factors figure draws the inferred factors of a split")
    split = key.split("/")[1].split("_")[0]
    data, attrs = read_binned(args.data, keys=[f"{split}_cond_idx"])
    start, _ = _window_start(attrs)
    return run_figures.plot_factor_trajectories(_three_d(args.output, key, factors), attrs["bin_width_s"],
                                                data.get(f"{split}_cond_idx"),
                                                f"{_run_title(out_attrs, args.output)}, {split} trials",
                                                start_ms=start or 0.0)


def _inferred_inputs(args):
    output, out_attrs = read_model_output(args.output)
    key, inputs = _first_present(
        output, args.output, ["latents/eval_inferred_inputs", "latents/train_inferred_inputs"],
        "the inferred-inputs figure needs a model with a controller (co_dim > 0)")
    _, attrs = read_binned(args.data, keys=[])
    start, event = _window_start(attrs)
    split = key.split("/")[1].split("_")[0]
    return run_figures.plot_inferred_inputs(_three_d(args.output, key, inputs), attrs["bin_width_s"], start, event,
                                            f"{_run_title(out_attrs, args.output)}, {split} trials")


def _training_curves(args):
    attrs = _output_attrs(args.output)
    path = Path(args.output).parent / "history.csv"
    with reading(path, "training history (history.csv beside output.h5)"):
        history = pd.read_csv(path)
    if history.empty:
        raise InputError(path, "<rows>", "no epochs logged")
    if not run_figures.history_panels(history.columns):
        raise InputError(path, "train_loss", "missing, and no other loss, logged term or lr column to draw")
    return run_figures.plot_training_curves(history, _run_title(attrs, args.output))


def _population_search(args):
    attrs = _output_attrs(args.output)
    path = Path(args.output).parent / "population.csv"
    with reading(path, "population history (population.csv beside output.h5)"):
        population = pd.read_csv(path)
    missing = [column for column in run_figures.POPULATION_FIXED if column not in population.columns]
    if population.empty or missing:
        raise InputError(path, missing[0] if missing else "<rows>", "missing" if missing else "no generation logged")
    return run_figures.plot_population_search(population, _run_title(attrs, args.output))


def _cd_validation(args):
    """Experiment 1's curves: the history.csv beside each run's output.h5, keyed by its dataset, model, seed."""
    histories = {}
    for output in args.outputs:
        attrs = _output_attrs(output)
        path = Path(output).parent / "history.csv"
        with reading(path, "training history (history.csv beside output.h5)"):
            histories[(attrs["dataset"], attrs["model"], int(attrs["seed"]))] = pd.read_csv(path)
    return overfitting.plot_training_curves_vs_truth(histories, args.colours)


# run figures drawn from files beside output.h5 (history.csv, population.csv), not from the binned dataset
BESIDE_OUTPUT = ("training-curves", "population-search")
RUN_FIGURES = {
    "rates-vs-truth": _rates_vs_truth,
    "factors": _factors,
    "inferred-inputs": _inferred_inputs,
    "training-curves": _training_curves,
    "population-search": _population_search,
}


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
    bars.add_argument("--metrics", nargs="+", default=nlb.NLB_METRICS, help="table columns to draw")
    bars.add_argument("--table", required=True)
    bars.add_argument("--colours", type=json.loads, required=True, help="JSON: model name -> colour")
    bars.add_argument("--simulated", nargs="*", default=[], help="datasets to label as simulated")
    bandwidth = sub.add_parser("sbtt-bandwidth")
    bandwidth.add_argument("--table", required=True)
    bandwidth.add_argument("--metrics", nargs="+", required=True, help="table columns drawn against the dropped fraction")
    two_photon = sub.add_parser("sbtt-two-photon")
    two_photon.add_argument("--table", required=True)
    pretraining = sub.add_parser("sbtt-pretraining")
    pretraining.add_argument("--table", required=True)
    stitching = sub.add_parser("multisession")
    stitching.add_argument("--table", required=True, help="results/tables/multisession_study.csv")
    stitching.add_argument("--decoding", nargs="+", required=True, help="the stitched runs' decoding.csv files")
    shared = sub.add_parser("multisession-factors")
    shared.add_argument("--sessions", nargs="+", required=True, help="each session's binned dataset, in order")
    shared.add_argument("--outputs", nargs="+", required=True, help="each session's part of the stitched run")
    shared.add_argument("--title", required=True)
    gain = sub.add_parser("multisession-trials")
    gain.add_argument("--table", required=True, help="results/tables/multisession_study.csv")
    gain.add_argument("--sessions", nargs="+", required=True,
                      help="the study's session binned datasets, results/data/binned/<session>_<bin>ms.h5")
    gain.add_argument("--sets", type=json.loads, default={},
                      help="JSON: session dataset -> panel (its multisession set)")
    trials = sub.add_parser("metrics-vs-trials")
    trials.add_argument("--table", required=True, help="a study table of <dataset>_full<n> runs")
    trials.add_argument("--colours", type=json.loads, required=True, help="JSON: model name -> colour")
    generative = sub.add_parser("generative")
    generative.add_argument("--figure-data", required=True)
    generative.add_argument("--colours", type=json.loads, required=True)
    curves = sub.add_parser("cd-validation")
    curves.add_argument("--outputs", nargs="+", required=True, help="run output.h5 files (history.csv beside each)")
    curves.add_argument("--colours", type=json.loads, required=True, help="JSON: model name -> colour")
    timing = sub.add_parser("latency")
    timing.add_argument("--table", required=True, help="results/tables/latency.csv")
    timing.add_argument("--colours", type=json.loads, required=True, help="JSON: model name -> colour")
    timing.add_argument("--goal-kinds", nargs=2, required=True, metavar=("GOAL", "BASELINE"),
                        help="the kinds the latency goal compares (kinds.latency_kinds)")
    for name in RUN_FIGURES:
        run = sub.add_parser(name)
        if name not in BESIDE_OUTPUT:
            run.add_argument("--data", required=True, help="the run's binned dataset")
        run.add_argument("--output", required=True, help="the run's output.h5 (history.csv, population.csv are read beside it)")
    for p in sub.choices.values():
        p.add_argument("--out", required=True, help="PNG path; the PDF is written beside it")
    args = parser.parse_args()

    if args.figure == "example-data":
        data, attrs = read_binned(args.data)
        fig = attractors.plot_example_data(data, attrs["dataset"], attrs["bin_width_s"])
    elif args.figure == "metric-vs-latent":
        fig = attractors.plot_metric_vs_latent(pd.read_csv(args.table), args.metric)
    elif args.figure == "nlb-metrics":
        fig = nlb.plot_nlb_metrics(pd.read_csv(args.table), args.colours, args.metrics, args.simulated)
    elif args.figure == "sbtt-bandwidth":
        fig = sbtt.plot_bandwidth_curves(pd.read_csv(args.table), args.metrics)
    elif args.figure == "sbtt-two-photon":
        fig = sbtt.plot_two_photon(pd.read_csv(args.table))
    elif args.figure == "sbtt-pretraining":
        fig = sbtt.plot_pretraining(pd.read_csv(args.table))
    elif args.figure == "multisession":
        decoding = pd.concat([pd.read_csv(path) for path in args.decoding], ignore_index=True)
        fig = multisession.plot_multisession(pd.read_csv(args.table), decoding)
    elif args.figure == "multisession-factors":
        fig = multisession.plot_shared_factors(
            [_factors_by_condition(data, output) for data, output in zip(args.sessions, args.outputs)], args.title)
    elif args.figure == "multisession-trials":
        counts = {Path(path).stem: len(read_binned(path, ["train_spikes_heldin"])[0]["train_spikes_heldin"])
                  for path in args.sessions}
        fig = multisession.plot_gain_vs_trials(pd.read_csv(args.table), counts, args.sets)
    elif args.figure == "metrics-vs-trials":
        fig = overfitting.plot_metrics_vs_trials(pd.read_csv(args.table), args.colours)
    elif args.figure == "cd-validation":
        fig = _cd_validation(args)
    elif args.figure == "generative":
        with reading(args.figure_data, "generative study figure data"), h5py.File(args.figure_data, "r") as f:
            data = {}
            f.visititems(lambda name, item: data.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
        fig = generation.plot_generative(data, args.colours)
    elif args.figure == "latency":
        fig = latency.plot_latency(pd.read_csv(args.table), args.colours, *args.goal_kinds)
    elif args.figure in RUN_FIGURES:
        fig = RUN_FIGURES[args.figure](args)
    else:
        data, attrs = read_binned(args.data)
        fixed = [_read_fixed_points(path) for path in args.fixed_points]
        if args.figure == "trajectories":
            runs = [
                (_run_name(path), state_latents(*read_model_output(path), "eval"), points)
                for path, (points, _) in zip(args.outputs, fixed)
            ]
            fig = attractors.plot_latent_trajectories(data, runs, attrs["dataset"], attrs["bin_width_s"])
        else:
            runs = [(_run_name(path), np.asarray(eig)) for path, (_, eig) in zip(args.outputs, fixed)]
            fig = attractors.plot_fixed_point_eigenvalues(data, runs, attrs["dataset"], attrs["bin_width_s"])
    save_figure(fig, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
