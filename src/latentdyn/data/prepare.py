"""Binned dataset -> what a model trains on and predicts from (docs/formats.md, "Model input").

Every model sees the same arrangement: the encoder reads held-in units over the window; the target is
held-in then held-out units over the window then the forward bins, NaN where unobserved or unknown.
Validation trials are the dataset's own `valid_*` split when it has one (the attractors), otherwise a
seeded fraction of the training trials, never the evaluation trials that are scored.

Unobserved entries (NaN) are handled here for every gradient-trained kind (the trainer's `unobserved`
setting): `skip` (selective backpropagation through time, SBTT; Zhu et al. 2021) keeps them NaN, which
each model reads as a zero input and leaves out of its loss; `zero_fill` (the naive alternative the SBTT
paper compares with) replaces them by 0 in the input and in the training and validation targets, so the
model is fit to the filled zeros as if they had been recorded.
"""

from dataclasses import dataclass

import numpy as np

from latentdyn.errors import InputError

SPLITS = ("train", "valid", "eval", "test")
UNOBSERVED = ("skip", "zero_fill")


@dataclass(frozen=True)
class DataShapes:
    """Sizes a model is built from."""

    n_input: int  # held-in units the encoder reads
    n_heldout: int
    n_bins: int  # bins of the window
    n_forward: int  # forward-prediction bins after the window
    n_ext: int = 0  # external-input dimensions
    n_sessions: int = 1
    session_units: tuple = ()  # stitched data (data/stitch.py): (held-in, held-out) units of each session

    @property
    def n_output(self):
        return self.n_input + self.n_heldout

    @property
    def n_recon_bins(self):
        return self.n_bins + self.n_forward

    def as_dict(self):
        return dict(self.__dict__)


@dataclass
class SplitArrays:
    """One split's model input and target, float32, trials first."""

    encoder_input: np.ndarray
    target: np.ndarray | None  # None where the targets are not known (eval, test)
    trial_index: np.ndarray
    truth: dict
    ext_input: np.ndarray | None = None  # trials × (window + forward bins) × external inputs

    def __len__(self):
        return len(self.encoder_input)

    def take(self, rows):
        return SplitArrays(
            self.encoder_input[rows],
            None if self.target is None else self.target[rows],
            self.trial_index[rows],
            {k: v[rows] for k, v in self.truth.items()},
            None if self.ext_input is None else self.ext_input[rows],
        )


@dataclass
class PreparedData:
    """`fit` trains on `train` and validates on `valid`; `predict` covers every split in `splits`."""

    shapes: DataShapes
    train: SplitArrays
    valid: SplitArrays | None
    splits: dict  # split name -> SplitArrays for prediction (train is the whole training split)
    arrays: dict  # the binned dataset itself, for kinds that work on it directly
    attrs: dict


def prepare(arrays, attrs, *, valid_fraction, seed, path="<data>", unobserved="skip"):
    """Arrange a binned dataset for training; `valid_fraction` of the training trials validate.

    With `valid_fraction=None` (kinds not trained by gradient) every training trial trains.
    `unobserved`: "skip" leaves NaN (unobserved) entries NaN; "zero_fill" makes them 0 in every split's
    input and target (module docstring). `arrays` (the binned dataset itself) is never changed.
    """
    if unobserved not in UNOBSERVED:
        raise ValueError(f"unobserved must be one of {UNOBSERVED}, not {unobserved!r}")
    train_in = arrays["train_spikes_heldin"]
    n_heldout = arrays["train_spikes_heldout"].shape[-1] if "train_spikes_heldout" in arrays else 0
    n_forward = arrays["train_spikes_heldin_forward"].shape[1] if "train_spikes_heldin_forward" in arrays else 0
    n_ext = arrays["train_ext_input"].shape[-1] if "train_ext_input" in arrays else 0
    sessions = attrs.get("sessions", ())  # stitched data: its units are the sessions' side by side
    session_units = tuple((s["n_heldin"], s["n_heldout"]) for s in sessions)
    shapes = DataShapes(train_in.shape[-1], n_heldout, train_in.shape[1], n_forward, n_ext, max(len(sessions), 1),
                        session_units)
    splits = {split: _split(arrays, split, shapes, path) for split in SPLITS if f"{split}_spikes_heldin" in arrays}
    if unobserved == "zero_fill":
        splits = {split: _zero_filled(values) for split, values in splits.items()}
    full_train = splits.pop("train")
    if "valid" in splits:
        train, valid = full_train, splits["valid"]
    elif valid_fraction is None:
        train, valid = full_train, None
    else:
        train, valid = _hold_out(full_train, valid_fraction, seed, path)
    return PreparedData(shapes, train, valid, {"train": full_train, **splits}, arrays, attrs)


def _split(arrays, split, shapes, path):
    encoder_input = np.asarray(arrays[f"{split}_spikes_heldin"], dtype=np.float32)
    n_trials = len(encoder_input)
    window = [encoder_input]
    if shapes.n_heldout:
        window.append(arrays.get(f"{split}_spikes_heldout", _unknown(n_trials, shapes.n_bins, shapes.n_heldout)))
    target = np.concatenate(window, axis=-1)
    if shapes.n_forward:
        forward = [
            arrays.get(f"{split}_spikes_{units}_forward", _unknown(n_trials, shapes.n_forward, size))
            for units, size in (("heldin", shapes.n_input), ("heldout", shapes.n_heldout))
            if size
        ]
        target = np.concatenate([target, np.concatenate(forward, axis=-1)], axis=1)
    target = np.asarray(target, dtype=np.float32)
    known = split in ("train", "valid") and not np.all(np.isnan(target))
    truth = {
        name: np.asarray(arrays[f"{split}_{name}"], dtype=np.float32)
        for name in ("true_rates_heldin", "true_rates_heldout", "true_latents")
        if f"{split}_{name}" in arrays
    }
    ext_input = None
    if shapes.n_ext:
        key = f"{split}_ext_input"
        if key not in arrays or np.shape(arrays[key])[:2] != (n_trials, shapes.n_recon_bins):
            raise InputError(path, key, f"external inputs must be given for every split, shaped ({n_trials}, {shapes.n_recon_bins}, {shapes.n_ext})")
        ext_input = np.asarray(arrays[key], dtype=np.float32)
    # stitched data: each session's own trial in the row, so per-trial masks follow a cycled trial
    trial_index = np.asarray(arrays.get(f"{split}_session_trial", np.arange(n_trials)), dtype=np.int64)
    return SplitArrays(encoder_input, target if known else None, trial_index, truth, ext_input)


def _zero_filled(split):
    """`split` with unobserved (NaN) input and target entries set to 0 (the naive alternative to SBTT)."""
    target = None if split.target is None else np.nan_to_num(split.target, nan=0.0)
    return SplitArrays(np.nan_to_num(split.encoder_input, nan=0.0), target, split.trial_index, split.truth,
                       split.ext_input)


def _unknown(n_trials, n_bins, n_units):
    return np.full((n_trials, n_bins, n_units), np.nan, dtype=np.float32)


def _hold_out(full_train, valid_fraction, seed, path):
    n_trials = len(full_train)
    n_valid = int(round(valid_fraction * n_trials))
    if not 1 <= n_valid < n_trials:
        raise InputError(path, "train_spikes_heldin", f"{n_trials} training trials cannot give a validation fraction of {valid_fraction}")
    order = np.random.default_rng(seed).permutation(n_trials)
    return full_train.take(np.sort(order[n_valid:])), full_train.take(np.sort(order[:n_valid]))


def split_rates(rates, shapes, split):
    """Model rates over (window + forward bins) × (held-in + held-out units) -> submission keys."""
    window, forward = rates[:, : shapes.n_bins], rates[:, shapes.n_bins :]
    out = {f"{split}_rates_heldin": window[..., : shapes.n_input]}
    if shapes.n_heldout:
        out[f"{split}_rates_heldout"] = window[..., shapes.n_input :]
    if shapes.n_forward:
        out[f"{split}_rates_heldin_forward"] = forward[..., : shapes.n_input]
        if shapes.n_heldout:
            out[f"{split}_rates_heldout_forward"] = forward[..., shapes.n_input :]
    return out
