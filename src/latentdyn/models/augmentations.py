"""What models do to their input and their loss: SBTT, coordinated dropout, sample validation (README §5,
§7, §9). LFADS uses all three; the sequential autoencoder uses SBTT and held-out-entry validation.

Pure functions of their arguments: masks are returned to the caller, never stored between calls, and
everything is tensor arithmetic on the batch's device, so a training step stays CUDA-graph capturable.
Coordinated dropout and sample validation act only on bins the controller-input encoder reads (after
the first `ic_enc_seq_len`, which only the IC encoder sees), as in lfads-torch.
"""

import torch

_MASK32 = 0xFFFFFFFF
_HASH_MULTIPLIER = 0x45D9F3B  # < 2**31, so a 32-bit value times it still fits in int64


def unobserved_as_zero(inputs):
    """SBTT's input side (lfads-torch SelectiveBackpropThruTime): unobserved (NaN) entries read as 0."""
    return torch.nan_to_num(inputs, nan=0.0)


def masked_mean(values, included):
    """Mean of `values` over the `included` entries: the per-element loss SBTT rescales to (§5: zero the
    excluded entries, divide the mean by the included fraction)."""
    included = included.to(values.dtype)
    return (values * included).sum() / included.sum().clamp_min(1)


def coordinated_dropout(inputs, rate, ic_enc_seq_len=0):
    """Zero a fresh Bernoulli(rate) draw of input entries and scale the rest by 1/(1 − rate).

    Returns (inputs, dropped): the caller keeps the reconstruction gradient of input entries only where
    they were dropped (`cd_gradient_mask`, `gradient_only_where`), so the model cannot learn to copy its
    input to its output.
    """
    dropped = torch.rand_like(inputs) < rate
    dropped[:, :ic_enc_seq_len] = False
    return torch.where(dropped, 0.0, inputs / (1 - rate)), dropped


def cd_gradient_mask(dropped, shape, ic_enc_seq_len=0):
    """Target entries whose reconstruction trains the model under coordinated dropout: the dropped input
    entries, and every entry CD never touches (IC-only bins, held-out units, forward bins)."""
    mask = pad_to(dropped, shape, True)
    mask[:, :ic_enc_seq_len] = True
    return mask


def gradient_only_where(values, mask):
    """`values` unchanged, but gradients flow only through the entries where `mask` is True."""
    return torch.where(mask, values, values.detach())


def sample_validation_mask(trial_index, shape, rate, seed, ic_enc_seq_len=0):
    """Entries held out for sample validation, bins × units per trial, fixed by (seed, trial index)."""
    held = entry_uniforms(trial_index, shape, seed) < rate
    held[:, :ic_enc_seq_len] = False
    return held


def entry_folds(trial_index, shape, folds, seed):
    """Each entry's fold, 0 … folds − 1, fixed by (seed, trial index): `folds` disjoint, equally likely
    sets of entries, so that held-out-entry validation can predict every entry once from inputs without it."""
    # clamped: float32 rounds the largest 32-bit hashes up to exactly 1
    return (entry_uniforms(trial_index, shape, seed) * folds).long().clamp_max(folds - 1)


def entry_uniforms(trial_index, shape, seed):
    """A uniform number in [0, 1) for every entry, bins × units per trial, fixed by (seed, trial index).

    A counter-based hash (Mueller's 32-bit integer mix) of seed, trial and entry, so a trial gets the
    same numbers in every epoch, in any batch, on any device, without a stored mask or a generator per
    trial.
    """
    n_bins, n_units = shape
    entry = torch.arange(n_bins * n_units, device=trial_index.device).view(1, n_bins, n_units)
    trial_key = _hash32(trial_index.view(-1, 1, 1) + _hash32(seed))
    return _hash32(trial_key ^ _hash32(entry)).to(torch.float32) / 2.0**32


def remove_held_out(inputs, held, rate):
    """Sample validation's input side: held-out entries zeroed, the rest scaled by 1/(1 − rate)."""
    return torch.where(held, 0.0, inputs / (1 - rate))


def pad_to(mask, shape, value):
    """An input-shaped mask (trials × input bins × held-in units) placed in the target's corner (the
    target has held-out units after, forward bins below); `value` elsewhere."""
    padded = torch.full(shape, value, dtype=torch.bool, device=mask.device)
    padded[:, : mask.shape[1], : mask.shape[2]] = mask
    return padded


def _hash32(x):
    """A well-mixed 32-bit value of an int64 tensor or a Python int (pure arithmetic: no device copy)."""
    x = x & _MASK32
    x = (((x >> 16) ^ x) * _HASH_MULTIPLIER) & _MASK32
    x = (((x >> 16) ^ x) * _HASH_MULTIPLIER) & _MASK32
    return (x >> 16) ^ x
