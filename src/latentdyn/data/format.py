"""The binned-dataset HDF5 format shared by every dataset (documented in docs/formats.md)."""

import json
import re
from pathlib import Path

import h5py
import numpy as np

from latentdyn.errors import InputError
from latentdyn.io import atomic_path, reading

FORMAT_NAME = "latentdyn-binned"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("train_spikes_heldin", "eval_spikes_heldin")
REQUIRED_ATTRS = ("dataset", "bin_width_s", "phase")
REQUIRED_OUTPUT_KEYS = ("eval_rates_heldin",)
UNIT_GROUPS = ("heldin", "heldout")
TRAINING_UNIT_KEYS = ("train_spikes_heldin", "train_spikes_heldout")
# Latent states in a model output: `{split}_latents`, or any `latents/{split}_<name>` in the latents group.
LATENTS_KEY = re.compile(r"^(?:(?P<split>[a-z]+)_latents|latents/(?P<group_split>[a-z]+)_\w+)$")


def write_binned(path, arrays, attrs):
    """Write `arrays` (name -> array, or name -> list of arrays for `*_cond_idx`) atomically."""
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise InputError(path, key, "required array missing from binned dataset")
    for key in REQUIRED_ATTRS:
        if key not in attrs:
            raise InputError(path, key, "required attribute missing from binned dataset")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        for name, value in arrays.items():
            if isinstance(value, (list, tuple)):
                group = f.create_group(name)
                for i, item in enumerate(value):
                    group.create_dataset(str(i), data=np.asarray(item))
            else:
                value = np.asarray(value)
                if value.dtype == np.float64:
                    value = value.astype(np.float32)
                f.create_dataset(name, data=value, compression="gzip" if value.size > 4096 else None)


def read_binned(path, keys=None):
    """Read a binned dataset into (arrays, attrs). `keys` limits which arrays are loaded."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "<file>", "binned dataset does not exist")
    with reading(path, "binned dataset"), h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise InputError(path, "format", f"not a {FORMAT_NAME} file")
        for key in REQUIRED_KEYS:
            if key not in f:
                raise InputError(path, key, "required array missing from binned dataset")
        for key in REQUIRED_ATTRS:
            if key not in f.attrs:
                raise InputError(path, key, "required attribute missing from binned dataset")
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
        arrays = {}
        for name in f.keys() if keys is None else [k for k in keys if k in f]:
            node = f[name]
            if isinstance(node, h5py.Group):
                arrays[name] = [node[str(i)][()] for i in range(len(node))]
            else:
                arrays[name] = node[()]
    check_layout(arrays, path)
    check_observed(arrays, path)
    return arrays, attrs


SPIKES_KEY = re.compile(r"^(?P<split>[a-z]+)_spikes_(?P<units>heldin|heldout)(?P<forward>_forward)?$")


def check_layout(arrays, path):
    """Reject spike arrays that break docs/formats.md before any model sees them: each numeric and
    (trials, bins, units); a unit group's count equal across splits and windows; within a split one
    trial count; the window's and the forward window's bins equal across unit groups and splits."""
    spikes = {key: SPIKES_KEY.match(key) for key in arrays}
    spikes = {key: match for key, match in spikes.items() if match}
    for key in spikes:
        value = np.asarray(arrays[key])
        if value.dtype.kind not in "biuf":
            raise InputError(path, key, f"dtype {value.dtype} is not numeric; spike arrays hold counts (NaN = unobserved)")
        if value.ndim != 3:
            raise InputError(path, key, f"rank {value.ndim} (shape {value.shape}); expected 3: (trials, bins, units)")
    first_seen = {}  # (axis, what it must agree on) -> the first key that set it
    for key, match in sorted(spikes.items(), key=lambda item: _reading_order(item[0])):
        shape = np.shape(arrays[key])
        agreements = (
            (2, ("units", match["units"]), "units"),
            (0, ("trials", match["split"]), "trials"),
            (1, ("bins", match["forward"] or ""), "forward bins" if match["forward"] else "bins"),
        )
        for axis, what, name in agreements:
            reference = first_seen.setdefault(what, key)
            expected = np.shape(arrays[reference])[axis]
            if shape[axis] != expected:
                raise InputError(path, key, f"{shape[axis]} {name}, but {reference} has {expected}")


def _reading_order(key):
    """train_spikes_heldin first, so a mismatch is reported on the array that differs from it."""
    return (key != "train_spikes_heldin", not key.startswith("train_"), key)


def check_counts(arrays, path):
    """Reject spike arrays a count likelihood cannot score: negative or non-integer entries (NaN, meaning
    unobserved, is fine). Continuous data (calcium ΔF/F under a Gaussian) is not checked."""
    for key in sorted(arrays):
        if not SPIKES_KEY.match(key):
            continue
        value = np.asarray(arrays[key], dtype=np.float64)
        observed = value[~np.isnan(value)]
        if np.any(observed < 0):
            raise InputError(path, key, f"negative spike counts (minimum {observed.min():g}); a count likelihood needs counts >= 0")
        if np.any(observed != np.round(observed)):
            raise InputError(path, key, "non-integer spike counts; a count likelihood needs whole counts"
                                        " (for continuous data such as calcium ΔF/F use a Gaussian likelihood)")


def check_observed(arrays, path):
    """Reject a spike array with nothing observed (empty or all NaN), and a unit never observed in the
    training split: a model fit to them would learn nothing and still score. NaN bins are fine."""
    for key, value in arrays.items():
        if "_spikes_" in key and np.all(np.isnan(value)):
            raise InputError(path, key, "nothing observed: the array is empty or every entry is NaN")
    for key in TRAINING_UNIT_KEYS:
        if key in arrays and np.ndim(arrays[key]) == 3:
            never = np.flatnonzero(np.all(np.isnan(arrays[key]), axis=(0, 1)))
            if len(never):
                raise InputError(path, key, f"unit column(s) {never.tolist()} never observed (all NaN) in the "
                                            "training split; no model can learn their rates")


def _decode_attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_model_output(path, arrays, attrs, data=None):
    """Write a model's output (submission keys, docs/formats.md) atomically, after
    `validate_model_output` against `data` (its binned dataset; shapes unchecked without it).
    A key `latents/<name>` goes into the `latents` group."""
    validate_model_output(arrays, data or {}, path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        for name, value in arrays.items():
            f.create_dataset(name, data=np.asarray(value, dtype=np.float32))


def read_model_output(path):
    """Read a model output file into (arrays, attrs); arrays of the `latents` group are keyed
    `latents/<name>`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "<file>", "model output does not exist")
    arrays = {}

    def add(name, node):
        if isinstance(node, h5py.Dataset):
            arrays[name] = node[()]

    with reading(path, "model output"), h5py.File(path, "r") as f:
        f.visititems(add)
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
    return arrays, attrs


def validate_model_output(output, data, path):
    """The one check of a model output against its dataset, before anything is scored or written.

    `eval_rates_heldin` is required; every `{split}_rates_{units}[_forward]` must be (trials, bins,
    units) as the dataset's `{split}_spikes_{units}[_forward]` (sizes the dataset does not tell are
    not checked), finite and non-negative; latents (`{split}_latents`, `latents/{split}_<name>`) must
    be finite, and a 3-D one (trials, bins, k >= 1) on the split's trials and bins. Raises InputError
    naming `path` and the key.
    """
    for key in REQUIRED_OUTPUT_KEYS:
        if key not in output:
            raise InputError(path, key, "missing from the model output")
    for key, value in output.items():
        value = np.asarray(value)
        latents = LATENTS_KEY.match(key)
        if latents:
            if not np.all(np.isfinite(value)):
                raise InputError(path, key, "latents must be finite")
            if latents["split"] or value.ndim == 3:
                split = latents["split"] or latents["group_split"]
                trials, bins = _split_sizes(data, split)
                forward = _split_sizes(data, "train", forward=True)[1] or 0
                if bins is not None and value.ndim == 3 and value.shape[1] == bins + forward:
                    bins += forward  # latents may cover the forward bins too
                _check_shape(path, key, value, (trials, bins, None), "(trials, bins, latent size)")
                if value.shape[-1] < 1:
                    raise InputError(path, key, "latents need at least one dimension")
        elif "_rates_" in key:
            split, units = key.split("_rates_", 1)
            spikes_key, group = f"{split}_spikes_{units}", units.split("_")[0]
            same_units = [spikes_key] + [k for k in data if re.fullmatch(rf"[a-z]+_spikes_{group}(_forward)?", k)]
            expected = (*_split_sizes(data, split, units.endswith("_forward"), spikes_key),
                        _size(data, same_units, 2))
            _check_shape(path, key, value, expected, "(trials, bins, units)")
            if not np.all(np.isfinite(value)) or np.any(value < 0):
                raise InputError(path, key, "rates must be finite and non-negative")


def _split_sizes(data, split, forward=False, spikes_key=None):
    """(trials, bins) of a split's window (or forward window) in the dataset, read from `spikes_key`
    when the dataset has it, else from the split's other arrays; None where unknown."""
    window = "_forward" if forward else ""
    first = [spikes_key] if spikes_key else []
    trial_keys = [f"{split}_spikes_{g}{w}" for w in ("", "_forward") for g in UNIT_GROUPS] + [f"{split}_behavior"]
    bin_keys = [f"{split}_spikes_{g}{window}" for g in UNIT_GROUPS] + ([] if forward else [f"{split}_behavior"])
    return _size(data, first + trial_keys, 0), _size(data, first + bin_keys, 1)


def _size(data, keys, axis):
    """Size along `axis` of the first 3-D (trials, bins, channels) array among `keys`, else None."""
    for key in keys:
        if key in data and np.ndim(data[key]) == 3:
            return np.shape(data[key])[axis]
    return None


def _check_shape(path, key, value, expected, layout):
    if value.ndim != len(expected) or any(want not in (None, got) for got, want in zip(value.shape, expected)):
        wanted = tuple("?" if want is None else want for want in expected)
        raise InputError(path, key, f"shape {value.shape}, expected {layout} = {wanted}")


def state_latents(output, attrs, split):
    """The inferred dynamical state of `split` (trials × bins × k) in a model output, or None.

    Kinds with latent dynamics name their state's latent in the `state_latent` attribute (the
    sequential autoencoder's `states`, LFADS's `gen_states`); it is stored as `latents/{split}_<name>`.
    """
    name = attrs.get("state_latent")
    return None if name is None else output.get(f"latents/{split}_{name}")
