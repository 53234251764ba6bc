"""Several sessions' binned datasets -> one stitched binned dataset a multisession model trains on, and
its output -> one output per session in the session's own submission format (README §10).

Why this layout: every training step must hold an equal share of trials from every session, shorter
sessions cycled (lfads-torch's multisession batching), and the shared trainer batches rows. So row k of
a stitched split holds one trial of every session side by side, units concatenated session after
session (held-in units of every session, then held-out units of every session, as in any binned
dataset): a batch of B rows is B trials of each session, whatever the shuffle. Session s's trial in
row k is its (k mod n_s)-th, so a session with fewer trials is cycled in training; in the validation and
evaluation splits the cycled copies are NaN (unobserved), so each session's validation mean counts each
trial once and nothing is predicted twice.

Validation: every 5th training trial of each session (§10), held out before cycling, so no cycled copy
of a validation trial is trained on. The stitched file adds to docs/formats.md's keys:

    {split}_session_trial      rows × sessions int64: each session's trial in the row (its row in the
                               session's own train or eval split)
    train_session_condition    rows × sessions int64: the trial's condition, an index into the
                               `conditions` attribute (the union of the sessions' condition names), -1
                               where the session has none

and the attribute `sessions` (per session: name, held-in and held-out unit counts, its trial rows per
split), which DataShapes.session_units and `unstitch` read.

A user may give a session already binned (`take_session`): it is taken as it is, so only what stitching
needs is checked: its bin width, and (by `stitch`) its window against the other sessions'.
"""

import numpy as np

from latentdyn.errors import InputError

VALID_EVERY = 5  # every 5th training trial validates (README §10)
SPLIT_SOURCES = {"train": "train", "valid": "train", "eval": "eval"}  # stitched split -> session split
UNIT_GROUPS = ("heldin", "heldout")


def stitch(sessions, name):
    """One stitched binned dataset (arrays, attrs) from `sessions`, a list of (arrays, attrs, source)
    of binned datasets sharing bin width, phase and window: the module docstring's layout."""
    first_arrays, first_attrs, first_source = sessions[0]
    for arrays, attrs, source in sessions[1:]:
        for key in ("bin_width_s", "phase"):
            if attrs[key] != first_attrs[key]:
                raise InputError(source, key, f"{attrs[key]} differs from {first_source}'s {first_attrs[key]}: sessions must be binned alike")
        for key in ("train_spikes_heldin", "train_spikes_heldin_forward"):
            if (key in arrays) != (key in first_arrays) or (key in arrays and arrays[key].shape[1] != first_arrays[key].shape[1]):
                raise InputError(source, key, f"bins differ from {first_source}'s: sessions must share the trial window")
        window, first_window = _window(attrs), _window(first_attrs)
        if window and first_window and window != first_window:
            raise InputError(source, "spec.window", f"aligned to {window}, {first_source} to {first_window}: "
                                                    "sessions must share the trial window")
    conditions = sorted({c for _, attrs, _ in sessions for c in attrs.get("conditions", [])})
    rows = [_session_rows(arrays, source) for arrays, _, source in sessions]
    widths = [{g: _width(arrays, g) for g in UNIT_GROUPS} for arrays, _, _ in sessions]
    keys = sorted({key.split("_", 1)[1] for arrays, _, _ in sessions for key in arrays if _stitched_key(key)})
    stitched = {}
    for split, source_split in SPLIT_SOURCES.items():
        n_rows = max(len(r[split]) for r in rows)
        picks = [np.resize(r[split], n_rows) for r in rows]  # np.resize repeats: the cycling
        copies = [np.arange(n_rows) >= len(r[split]) for r in rows]
        for key in keys:
            group = "heldin" if "heldin" in key else "heldout"
            parts = []
            for (arrays, _, _), pick, copy, width in zip(sessions, picks, copies, widths):
                values = arrays.get(f"{source_split}_{key}")
                if values is None:  # unknown in this session (e.g. no held-out units)
                    bins = _bins(sessions, source_split, key)
                    part = np.full((n_rows, bins, width[group]), np.nan, dtype=np.float32)
                else:
                    part = np.array(values[pick], dtype=np.float32)
                if split != "train":
                    part[copy] = np.nan
                parts.append(part)
            if any(p.shape[-1] for p in parts):
                stitched[f"{split}_{key}"] = np.concatenate(parts, axis=-1)
        stitched[f"{split}_session_trial"] = np.stack(picks, axis=1).astype(np.int64)
    stitched["train_session_condition"] = np.stack(
        [np.resize(_conditions(arrays, attrs, conditions)[r["train"]], len(stitched["train_session_trial"]))
         for (arrays, attrs, _), r in zip(sessions, rows)], axis=1)
    for split in ("train", "eval"):
        stitched[f"{split}_trial_ids"] = np.arange(len(stitched[f"{split}_spikes_heldin"]))
    attrs = {
        "dataset": name,
        "bin_width_s": first_attrs["bin_width_s"],
        "phase": first_attrs["phase"],
        "source": ", ".join(str(source) for _, _, source in sessions),
        "conditions": conditions,
        "sessions": [
            {"name": str(source), "n_heldin": w["heldin"], "n_heldout": w["heldout"],
             "rows": {split: r[split].tolist() for split in SPLIT_SOURCES}}
            for (_, _, source), w, r in zip(sessions, widths, rows)
        ],
    }
    return stitched, attrs


def take_session(attrs, source, name, bin_ms):
    """The attributes of binned dataset `source` taken as session `name` of a dataset stitched at `bin_ms`
    ms: its own, renamed; a bin width other than the study's would stitch trials of another duration."""
    width = attrs["bin_width_s"]
    if not isinstance(width, (int, float)) or not np.isclose(width, bin_ms / 1000):
        raise InputError(source, "bin_width_s", f"{width} s, but the sessions are stitched at "
                                                f"{bin_ms} ms bins (multisession_study.bin_sizes_ms)")
    return {**attrs, "dataset": name, "bin_width_s": bin_ms / 1000, "source": str(source)}


def unstitch(outputs, attrs, session):
    """Session `session`'s output arrays in its own submission format (train = its training and
    validation trials in its own order, eval), from a stitched model's `outputs`: its units' columns, its
    rows, and of latents (rows × … × sessions·k) its k."""
    sessions = attrs["sessions"]
    info = sessions[session]
    n_in = [s["n_heldin"] for s in sessions]
    n_out = [s["n_heldout"] for s in sessions]
    columns = {"heldin": slice(sum(n_in[:session]), sum(n_in[:session + 1])),
               "heldout": slice(sum(n_out[:session]), sum(n_out[:session + 1]))}
    result = {}
    for target in ("train", "eval"):
        parts = [(split, info["rows"][split]) for split, source in SPLIT_SOURCES.items() if source == target]
        n_trials = sum(len(r) for _, r in parts)
        for key, value in outputs.items():
            latent = key.startswith("latents/")
            stem = key.removeprefix("latents/")
            for split, row_list in parts:
                if not stem.startswith(f"{split}_"):
                    continue
                name = f"{target}_{stem.removeprefix(f'{split}_')}"
                if latent:
                    k = value.shape[-1] // len(sessions)
                    block, name = value[: len(row_list), ..., session * k:(session + 1) * k], f"latents/{name}"
                else:
                    group = "heldout" if "heldout" in stem else "heldin"
                    if not info[f"n_{group}"]:
                        continue
                    block = value[: len(row_list), ..., columns[group]]
                if name not in result:
                    result[name] = np.empty((n_trials, *block.shape[1:]), dtype=np.float32)
                result[name][row_list] = block
    return result


def _session_rows(arrays, source):
    """A session's trials of each stitched split: every 5th training trial validates, the rest train."""
    n_train = len(arrays["train_spikes_heldin"])
    if n_train < 2:
        raise InputError(source, "train_spikes_heldin", "a session needs at least 2 training trials")
    index = np.arange(n_train)
    valid = index % VALID_EVERY == VALID_EVERY - 1
    if not valid.any():
        valid = index == n_train - 1  # fewer than 5 trials: the last one validates
    return {"train": index[~valid], "valid": index[valid], "eval": np.arange(len(arrays["eval_spikes_heldin"]))}


def _stitched_key(key):
    """Per-unit arrays of a split that stitching concatenates: spikes and true rates."""
    return key.split("_", 1)[0] in ("train", "eval") and ("_spikes_" in key or "_true_rates_" in key)


def _window(attrs):
    """(alignment field, offsets in ms) of a session binned from NWB (its `spec`), else None: sessions of
    equal bins may still be cut around different events."""
    spec = attrs.get("spec")
    window = spec.get("window") if isinstance(spec, dict) else None
    return (window["align_field"], window["offsets_ms"]) if window else None


def _width(arrays, group):
    key = f"train_spikes_{group}"
    return int(arrays[key].shape[-1]) if key in arrays else 0


def _bins(sessions, split, key):
    return next(arrays[f"{split}_{key}"].shape[1] for arrays, _, _ in sessions if f"{split}_{key}" in arrays)


def _conditions(arrays, attrs, conditions):
    """Each training trial's index into `conditions` (-1: none)."""
    labels = np.full(len(arrays["train_spikes_heldin"]), -1, dtype=np.int64)
    for name, trials in zip(attrs.get("conditions", []), arrays.get("train_cond_idx", [])):
        labels[np.asarray(trials, dtype=np.int64)] = conditions.index(name)
    return labels
