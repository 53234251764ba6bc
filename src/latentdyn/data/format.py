"""The binned-dataset HDF5 format shared by every dataset (documented in docs/formats.md)."""

import json
from pathlib import Path

import h5py
import numpy as np

from latentdyn.errors import InputError
from latentdyn.io import atomic_path

FORMAT_NAME = "latentdyn-binned"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("train_spikes_heldin", "eval_spikes_heldin")
REQUIRED_ATTRS = ("dataset", "bin_width_s", "phase")


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
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise InputError(path, "format", f"not a {FORMAT_NAME} file")
        for key in REQUIRED_KEYS:
            if key not in f:
                raise InputError(path, key, "required array missing from binned dataset")
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
        arrays = {}
        for name in f.keys() if keys is None else [k for k in keys if k in f]:
            node = f[name]
            if isinstance(node, h5py.Group):
                arrays[name] = [node[str(i)][()] for i in range(len(node))]
            else:
                arrays[name] = node[()]
    return arrays, attrs


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


def write_model_output(path, arrays, attrs):
    """Write a model's output (submission keys, docs/formats.md) atomically, checking rates."""
    for name, value in arrays.items():
        if "_rates_" in name:
            value = np.asarray(value)
            if not np.all(np.isfinite(value)) or np.any(value < 0):
                raise InputError(path, name, "rates must be finite and non-negative")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        for name, value in arrays.items():
            f.create_dataset(name, data=np.asarray(value, dtype=np.float32))


def read_model_output(path):
    """Read a model output file into (arrays, attrs)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "<file>", "model output does not exist")
    with h5py.File(path, "r") as f:
        arrays = {name: f[name][()] for name in f.keys()}
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
    return arrays, attrs
