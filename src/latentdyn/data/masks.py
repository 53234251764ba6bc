"""Bandwidth-limited sampling (SBTT, Zhu et al. 2021): in every trial and bin only `bandwidth` channels
are observed, drawn without replacement; the rest are NaN.

The masks are seeded and nested: for each `*_spikes_heldin` array a seeded random ranking of the
channels is drawn per trial and bin (from the seed and the array's name only), and a bandwidth keeps
the first `bandwidth` channels of it. So the same seed gives the same mask, every model sees the same
masked data, and the channels kept at bandwidth b are among those kept at any larger bandwidth (the
sbtt-demo draws each bandwidth independently; nesting only removes mask noise between levels).
Entries already NaN stay NaN. Held-out, forward and ground-truth arrays are untouched.
"""

import re

import numpy as np

from latentdyn.data.format import check_observed
from latentdyn.errors import InputError

MASKED_KEY = re.compile(r"^[a-z]+_spikes_heldin$")


def channel_order(key, shape, seed):
    """Seeded random order of the channels (trials x bins x channels: a permutation of the channels in
    every trial and bin) for array `key`; a bandwidth b observes the first b channels of it."""
    rng = np.random.default_rng([seed, *key.encode()])
    return np.argsort(rng.random(shape), axis=-1)


def apply_bandwidth(arrays, bandwidth, seed, path="<data>"):
    """A copy of `arrays` where every `{split}_spikes_heldin` keeps exactly `bandwidth` channels per
    trial and bin (NaN elsewhere). Raises InputError (a ValueError naming `path` and the key) for a
    bandwidth outside 1..channels, or if a training unit would never be observed (read_binned would
    reject the file)."""
    masked = dict(arrays)
    for key, value in arrays.items():
        if not MASKED_KEY.match(key):
            continue
        value = np.asarray(value, dtype=np.float32)
        if not 1 <= bandwidth <= value.shape[-1]:
            raise InputError(path, key, f"bandwidth {bandwidth} outside 1..{value.shape[-1]} (its channels)")
        keep = np.zeros(value.shape, dtype=bool)
        np.put_along_axis(keep, channel_order(key, value.shape, seed)[..., :bandwidth], True, axis=-1)
        masked[key] = np.where(keep, value, np.float32(np.nan))
    try:
        check_observed(masked, path)
    except InputError as error:
        raise InputError(path, error.field, f"after masking to bandwidth {bandwidth}: {error.problem}") from error
    return masked


def bandwidth_attrs(attrs, bandwidth, seed, source=None):
    """Attributes of the masked dataset: its name `<dataset>_bw<bandwidth>`, the mask's bandwidth and seed."""
    return {
        **attrs,
        "dataset": f"{attrs['dataset']}_bw{bandwidth}",
        "source": f"latentdyn.data.masks bandwidth={bandwidth} seed={seed} of {source or attrs['dataset']}",
        "bandwidth": bandwidth,
        "mask_seed": seed,
    }
