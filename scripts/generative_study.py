"""The generative study (latentdyn.metrics.generation) of datasets with withheld conditions, over the runs
of models with capability `code_generation`. Writes three tables (a row per dataset and run) and each
dataset's figure data.

    python scripts/generative_study.py --data reaching_20ms_unseen.h5 mc_maze_20ms_unseen.h5 \
        --outputs results/runs/<dataset>/<model>/seed<k>/output.h5 ... \
        --disentanglement d.csv --unseen u.csv --realism r.csv --figure-data f1.h5 f2.h5

1. disentanglement: per run, DCI and ridge decoding (angle, velocity) of the trials' codes, fitted on the
   training trials, scored on the seen evaluation trials.
2. unseen: per run and withheld condition, the code the behaviour -> code map gives its reach angle,
   trials generated from it, scored against the real withheld trials; a "nearest seen" row per condition.
3. realism: per run, Poisson spikes of trials generated from codes drawn like the training codes, against
   the real seen evaluation trials; a "real half vs half" row.
"""

import argparse
from pathlib import Path

import _bootstrap  # noqa: F401
import h5py
import numpy as np
import pandas as pd
import torch

from latentdyn.cli import main_guard
from latentdyn.data.format import read_binned, read_model_output, validate_model_output
from latentdyn.data.subsets import condition_angles, require_finite_velocity, trial_conditions
from latentdyn.errors import InputError
from latentdyn.io import atomic_path
from latentdyn.metrics import generation as gen
from latentdyn.models.kinds import get_kind
from latentdyn.models.pipeline import load_trained
from latentdyn.training.checkpoints import FINAL_NAME

SPLITS = ("train", "eval")


def run_of(path):
    """(dataset, model, seed) of results/runs/<dataset>/<model>/seed<k>/output.h5."""
    path = Path(path)
    return path.parents[2].name, path.parent.parent.name, int(path.parent.name.removeprefix("seed"))


class Dataset:
    """One dataset's trials as the study sees them: conditions, reach angles, real rates and spikes."""

    def __init__(self, path):
        self.path = path
        self.arrays, self.attrs = read_binned(path)
        self.names = list(self.attrs.get("conditions", []))
        self.condition_angles = condition_angles(self.arrays, path)
        conditions = {split: trial_conditions(self.arrays, split) for split in SPLITS}
        self.seen = sorted(set(conditions["train"]) - {-1})
        self.withheld = sorted(set(conditions["eval"]) - set(self.seen) - {-1})
        if not self.withheld:
            raise InputError(path, "eval_cond_idx", "no withheld condition: every evaluation condition was trained on")
        require_finite_velocity(self.arrays, path)
        without_reach = [self.names[c] for c in self.seen + self.withheld if np.isnan(self.condition_angles[c])]
        if without_reach:
            raise InputError(path, "eval_behavior", f"condition {without_reach[0]!r} has no reach angle (its mean "
                             "hand displacement is zero): the study places and generates conditions by angle")
        self.conditions = np.concatenate([conditions["train"], conditions["eval"]])
        self.angles = np.where(self.conditions >= 0, self.condition_angles[self.conditions], np.nan)
        self.n_train = len(conditions["train"])
        self.train_rows = np.flatnonzero(conditions["train"] >= 0)
        eval_seen = np.isin(conditions["eval"], self.seen)
        self.test_rows = self.n_train + np.flatnonzero(eval_seen)
        self.behavior = np.concatenate([self.arrays["train_behavior"], self.arrays["eval_behavior"]])
        self.real = np.concatenate([gen.real_rates(self.arrays, self.attrs, split) for split in SPLITS])
        spikes = {split: gen.window_spikes(self.arrays, split) for split in SPLITS}
        self.seen_eval_spikes = spikes["eval"][eval_seen]
        self.all_seen_spikes = np.concatenate([spikes["train"][self.train_rows], self.seen_eval_spikes])
        self.decoder = gen.velocity_decoder(gen.smoothed(spikes["train"], self.attrs), self.arrays["train_behavior"])
        self.bin_width = float(self.attrs["bin_width_s"])

    def rows_of(self, condition):
        return self.conditions == condition

    def nearest_seen(self, condition):
        return self.seen[gen.nearest_seen(self.condition_angles[condition], self.condition_angles[self.seen])]

    def label(self, condition):
        return {"condition": self.names[condition], "angle_deg": float(np.degrees(self.condition_angles[condition]))}


def reference_rows(data, figure):
    """The floor per withheld condition (the nearest seen condition's real trials) and the realism ceiling."""
    unseen = []
    for condition in data.withheld:
        rows = data.rows_of(condition)
        nearest = data.rows_of(data.nearest_seen(condition))
        nearest[data.n_train:] = False  # its training trials: what a model had
        scores, decoded = gen.unseen_scores(data.real[nearest], data.real[rows].mean(0), data.behavior[rows].mean(0),
                                            data.decoder)
        unseen.append({"model": "nearest seen", "seed": -1, **data.label(condition), **scores})
        figure[f"real/psth_{condition}"] = data.real[rows].mean(0)
        figure[f"real/velocity_{condition}"] = data.behavior[rows].mean(0)
        figure[f"nearest seen/velocity_{condition}"] = decoded
    ceiling = {"model": "real half vs half", "seed": -1, **gen.real_ceiling(data.all_seen_spikes, data.bin_width)}
    return unseen, [ceiling]


def run_rows(data, path, figure):
    """One run's disentanglement, unseen-condition and realism rows."""
    _, model_name, seed = run_of(path)
    output, output_attrs = read_model_output(path)
    validate_model_output(output, data.arrays, path)
    implementation = get_kind(output_attrs["kind"]).implementation()
    key = implementation.CODE_LATENT
    codes = np.concatenate([output[f"latents/train_{key}"], output[f"latents/eval_{key}"]])
    run = {"model": model_name, "seed": seed}
    disentanglement = {**run, **gen.disentanglement_row(codes, data.angles, data.behavior, data.train_rows,
                                                        data.test_rows, seed)}
    model, _ = load_trained(path)
    torch.manual_seed(seed)
    n_bins = data.real.shape[1]

    def generate(code_rows):
        rates = implementation.generate(model, torch.as_tensor(code_rows, dtype=torch.float32))[:, :n_bins].numpy()
        if not np.isfinite(rates).all():  # a diverged model: no score, rather than NaN in a table
            raise InputError(Path(path).with_name(FINAL_NAME), "generate",
                             "generated rates are NaN or inf; the model diverged (retrain it)")
        return rates  # the window: what the real trials are compared over

    mapping = gen.code_map(data.angles[data.train_rows], codes[data.train_rows])
    unseen = []
    for condition in data.withheld:
        rows = data.rows_of(condition)
        code = mapping.predict(gen.angle_targets(data.condition_angles[[condition]]))
        generated = generate(np.repeat(code, max(int(rows.sum()), gen.MIN_GENERATED), axis=0))
        scores, decoded = gen.unseen_scores(generated, data.real[rows].mean(0), data.behavior[rows].mean(0),
                                            data.decoder)
        unseen.append({**run, **data.label(condition), **scores})
        figure[f"{model_name}/seed{seed}/psth_{condition}"] = generated.mean(0)
        figure[f"{model_name}/seed{seed}/velocity_{condition}"] = decoded
    sampled = generate(gen.sampled_codes(codes[data.train_rows], len(data.seen_eval_spikes), seed))
    realism = {**run, **gen.realism(sampled, data.seen_eval_spikes, data.bin_width, seed)}
    labelled = data.conditions >= 0
    figure[f"{model_name}/seed{seed}/codes"] = codes[labelled]
    return disentanglement, unseen, realism


@main_guard
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="binned datasets with withheld conditions")
    parser.add_argument("--outputs", nargs="+", required=True, help="the runs on them")
    parser.add_argument("--figure-data", nargs="+", required=True, help="one per --data, in the same order")
    for name in ("disentanglement", "unseen", "realism"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    if len(args.figure_data) != len(args.data):
        parser.error("--figure-data needs one path per --data")
    unmatched = [p for p in args.outputs if run_of(p)[0] not in {Path(d).stem for d in args.data}]
    if unmatched:
        parser.error(f"{unmatched[0]}: a run on none of the --data datasets")
    tables = {"disentanglement": [], "unseen": [], "realism": []}
    for data_path, figure_path in zip(args.data, args.figure_data):
        data, name = Dataset(data_path), Path(data_path).stem
        figure = {"withheld": np.array(data.withheld), "seen": np.array(data.seen)}
        unseen, realism = reference_rows(data, figure)
        disentanglement = []
        for path in (p for p in args.outputs if run_of(p)[0] == name):
            run_disentanglement, run_unseen, run_realism = run_rows(data, path, figure)
            disentanglement.append(run_disentanglement)
            unseen += run_unseen
            realism.append(run_realism)
        for table, rows in zip(("disentanglement", "unseen", "realism"), (disentanglement, unseen, realism)):
            tables[table] += [{"dataset": name, **row} for row in rows]
        figure["angles"] = data.angles[data.conditions >= 0]
        figure["withheld_trial"] = np.isin(data.conditions[data.conditions >= 0], data.withheld)
        figure["withheld_angles_deg"] = np.degrees(data.condition_angles[data.withheld])
        with atomic_path(figure_path) as tmp, h5py.File(tmp, "w") as f:
            for key, value in figure.items():
                f[key] = value
            f.attrs["bin_width_s"] = data.bin_width
            f.attrs["dataset"] = name

    for table, rows in tables.items():
        with atomic_path(getattr(args, table)) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
