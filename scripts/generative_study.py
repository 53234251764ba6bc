"""The generative study (latentdyn.metrics.generation) of one reaching dataset with withheld directions,
over the runs of models with capability `code_generation`. Writes three tables and the figure's data.

    python scripts/generative_study.py --data reaching_unseen_20ms.h5 --n-directions 8 \
        --outputs results/runs/<dataset>/<model>/seed<k>/output.h5 ... \
        --disentanglement d.csv --unseen u.csv --realism r.csv --figure-data f.h5

1. disentanglement: per run, DCI and ridge decoding (angle, velocity) of the trials' codes, fitted on the
   training trials, scored on the seen evaluation trials.
2. unseen: per run and withheld direction, the code the behaviour -> code map gives that direction, trials
   generated from it, scored against the real withheld trials; a "nearest seen" row per direction.
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
from latentdyn.data.format import read_binned, read_model_output
from latentdyn.errors import InputError
from latentdyn.io import atomic_path
from latentdyn.metrics import generation as gen
from latentdyn.models.kinds import get_kind
from latentdyn.models.pipeline import load_trained


def run_of(path):
    """(model, seed) of results/runs/<dataset>/<model>/seed<k>/output.h5."""
    path = Path(path)
    return path.parent.parent.name, int(path.parent.name.removeprefix("seed"))


@main_guard
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--n-directions", type=int, required=True)
    parser.add_argument("--outputs", nargs="+", required=True)
    for name in ("disentanglement", "unseen", "realism", "figure-data"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    arrays, attrs = read_binned(args.data)
    for key in ("train_behavior", "eval_behavior", "train_cond_idx", "eval_cond_idx"):
        if key not in arrays:
            raise InputError(args.data, key, "missing; the generative study needs behaviour and conditions")
    directions = {split: gen.trial_directions(arrays, attrs, split) for split in ("train", "eval")}
    angles = {split: 2 * np.pi * d / args.n_directions for split, d in directions.items()}
    seen = sorted(set(directions["train"]) - {-1})
    withheld = sorted(set(directions["eval"]) - set(seen) - {-1})
    if not withheld:
        raise InputError(args.data, "eval_cond_idx", "no withheld direction: every evaluation direction was trained on")
    eval_seen = np.isin(directions["eval"], seen)
    behavior = np.concatenate([arrays["train_behavior"], arrays["eval_behavior"]])
    all_angles = np.concatenate([angles["train"], angles["eval"]])
    n_train = len(angles["train"])
    train_rows, test_rows = np.arange(n_train), n_train + np.flatnonzero(eval_seen)
    real = {split: gen.real_rates(arrays, attrs, split) for split in ("train", "eval")}
    spikes = {split: gen.window_spikes(arrays, split) for split in ("train", "eval")}
    decoder = gen.velocity_decoder(gen.smoothed(spikes["train"], attrs), arrays["train_behavior"])
    n_bins, bin_width = real["train"].shape[1], float(attrs["bin_width_s"])

    disentanglement, unseen, realism, figure = [], [], [], {"withheld": np.array(withheld), "seen": np.array(seen)}
    for direction in withheld:  # the floor: the nearest seen direction's real trials
        rows = directions["eval"] == direction
        nearest = gen.nearest_seen_direction(direction, seen, args.n_directions)
        scores, decoded = gen.unseen_scores(real["train"][directions["train"] == nearest], real["eval"][rows].mean(0),
                                            arrays["eval_behavior"][rows].mean(0), decoder)
        unseen.append({"model": "nearest seen", "seed": -1, "direction": direction, **scores})
        figure[f"real/psth_{direction}"] = real["eval"][rows].mean(0)
        figure[f"real/velocity_{direction}"] = arrays["eval_behavior"][rows].mean(0)
        figure[f"nearest seen/velocity_{direction}"] = decoded
    ceiling = gen.real_ceiling(np.concatenate([spikes["train"], spikes["eval"][eval_seen]]), bin_width)
    realism.append({"model": "real half vs half", "seed": -1, **ceiling})

    for path in args.outputs:
        model_name, seed = run_of(path)
        output, output_attrs = read_model_output(path)
        implementation = get_kind(output_attrs["kind"]).implementation()
        key = implementation.CODE_LATENT
        codes = np.concatenate([output[f"latents/train_{key}"], output[f"latents/eval_{key}"]])
        disentanglement.append({"model": model_name, "seed": seed,
                                **gen.disentanglement_row(codes, all_angles, behavior, train_rows, test_rows, seed)})
        model, _ = load_trained(path)
        torch.manual_seed(seed)

        def generate(code_rows):
            rates = implementation.generate(model, torch.as_tensor(code_rows, dtype=torch.float32))
            return rates[:, :n_bins].numpy()  # the window: what the real trials are compared over

        mapping = gen.code_map(angles["train"], codes[:n_train])
        for direction in withheld:
            rows = directions["eval"] == direction
            code = mapping.predict(gen.angle_targets(np.array([2 * np.pi * direction / args.n_directions])))
            generated = generate(np.repeat(code, max(int(rows.sum()), gen.MIN_GENERATED), axis=0))
            scores, decoded = gen.unseen_scores(generated, real["eval"][rows].mean(0),
                                                arrays["eval_behavior"][rows].mean(0), decoder)
            unseen.append({"model": model_name, "seed": seed, "direction": direction, **scores})
            figure[f"{model_name}/seed{seed}/psth_{direction}"] = generated.mean(0)
            figure[f"{model_name}/seed{seed}/velocity_{direction}"] = decoded
        sampled = generate(gen.sampled_codes(codes[:n_train], int(eval_seen.sum()), seed))
        realism.append({"model": model_name, "seed": seed,
                        **gen.realism(sampled, spikes["eval"][eval_seen], bin_width, seed)})
        figure[f"{model_name}/seed{seed}/codes"] = codes
    figure["angles"] = all_angles
    figure["withheld_trial"] = np.isin(np.concatenate([directions["train"], directions["eval"]]), withheld)

    for rows, out in ((disentanglement, args.disentanglement), (unseen, args.unseen), (realism, args.realism)):
        with atomic_path(out) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
    with atomic_path(args.figure_data) as tmp, h5py.File(tmp, "w") as f:
        for name, value in figure.items():
            f[name] = value
        f.attrs["bin_width_s"] = bin_width


if __name__ == "__main__":
    main()
