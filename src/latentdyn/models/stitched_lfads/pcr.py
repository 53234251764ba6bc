"""Principal-component-regression initialisation of the per-session read-ins and read-outs (README §10).

Why: sessions share dynamics but not neurons, so each session's read-in must start by mapping its
neurons onto one common space, or the shared encoders would see unrelated inputs per session. §10
(lfads-torch's tutorial): smooth the spikes, average them into condition PSTHs per session, concatenate
every session's neurons, centre, PCA; per session a ridge fit (alpha 1, no intercept) of its centred
PSTHs onto the global PCs gives the read-in W, bias −mean·W; the read-out starts as pinv(W), bias the
neurons' means.

Two choices of ours, where §10 says nothing:
* Conditions that only some sessions present: for the PCA, a session's missing conditions are filled
  by low-rank completion of the concatenated PSTHs (EM-PCA at the PC count), and its ridge fit uses only
  the conditions it has.
  With the conditions it lacks, a session's mean PC score is not 0: its ridge fit maps centred PSTHs
  to centred scores and the read-in's bias adds its mean score (−mean·W plus it; with every condition
  present that is §10's −mean·W), and the read-out's bias subtracts it again.
* Held-out units (not read in): their read-out is a ridge map from the read-in's PCs to their centred
  PSTHs, bias their means, so that every output unit starts from the same shared space.
Data without conditions (no `cond_idx`) uses each smoothed trial as its own condition.
With fewer PCs than `readin_dim` (rank of the PSTHs), the remaining read-in dimensions start at zero.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d


@dataclass(frozen=True)
class SessionMaps:
    """One session's initial maps, as numpy arrays."""

    readin_weight: np.ndarray  # held-in units × readin_dim (W)
    readin_bias: np.ndarray  # readin_dim (−mean·W)
    readout_weight: np.ndarray  # readin_dim × (held-in + held-out units): pinv(W), then the held-out ridge map
    readout_bias: np.ndarray  # held-in + held-out units: their means


def session_psths(prepared, smooth_ms):
    """Per session: {condition: PSTH (bins × (held-in + held-out units))} of its unique training trials,
    spikes smoothed with a Gaussian of sd `smooth_ms` (unobserved entries read as 0, as the model reads
    them)."""
    shapes, train = prepared.shapes, prepared.train
    units = shapes.session_units or ((shapes.n_input, shapes.n_heldout),)
    trial_index = train.trial_index.reshape(len(train), -1)
    labels = prepared.arrays.get("train_session_condition")  # stitched data labels its rows
    if labels is None:
        labels = _condition_of_trial(prepared.arrays)[trial_index]
    window = np.nan_to_num(train.target[:, : shapes.n_bins])
    sigma = smooth_ms / (1000 * prepared.attrs["bin_width_s"])
    smoothed = gaussian_filter1d(window, sigma, axis=1, mode="nearest") if sigma > 0 else window
    n_in, n_out = np.cumsum([0] + [u[0] for u in units]), shapes.n_input + np.cumsum([0] + [u[1] for u in units])
    psths = []
    for s in range(len(units)):
        _, rows = np.unique(trial_index[:, s], return_index=True)  # cycled copies counted once
        columns = np.r_[n_in[s]:n_in[s + 1], n_out[s]:n_out[s + 1]]
        condition = labels[rows, s]
        data = smoothed[rows][:, :, columns]
        psths.append({c: data[condition == c].mean(0) for c in np.unique(condition[condition >= 0])})
    return psths, units


def _condition_of_trial(arrays):
    """Each training trial's condition in an ordinary binned dataset (`train_cond_idx`; -1: none), or,
    without conditions, the trial itself."""
    n_trials = len(arrays["train_spikes_heldin"])
    if "train_cond_idx" not in arrays:
        return np.arange(n_trials)
    labels = np.full(n_trials, -1, dtype=np.int64)
    for condition, trials in enumerate(arrays["train_cond_idx"]):
        labels[np.asarray(trials, dtype=np.int64)] = condition
    return labels


def pcr_maps(psths, units, dim, ridge):
    """Each session's SessionMaps from its PSTHs (`session_psths`), `dim` PCs, ridge alpha `ridge`."""
    conditions = sorted(set().union(*psths))
    blocks = []  # per session: (conditions × bins) × held-in units, NaN where the session lacks a condition
    for psth, (n_in, _) in zip(psths, units):
        n_bins = next(iter(psth.values())).shape[0]
        block = np.full((len(conditions), n_bins, n_in), np.nan)
        for i, c in enumerate(conditions):
            if c in psth:
                block[i] = psth[c][:, :n_in]
        blocks.append(block.reshape(-1, n_in))
    data = _complete(np.concatenate(blocks, axis=1), dim)
    means = data.mean(axis=0)
    u, singular, _ = np.linalg.svd(data - means, full_matrices=False)
    n_pcs = min(dim, int(np.sum(singular > singular[0] * 1e-8)))
    scores = u[:, :n_pcs] * singular[:n_pcs]
    maps, start = [], 0
    for block, psth, (n_in, n_out) in zip(blocks, psths, units):
        present = ~np.isnan(block[:, 0])
        in_mean, start = means[start:start + n_in], start + n_in
        target = scores[present]
        score_mean = target.mean(0)  # 0 when the session has every condition
        weight = np.zeros((n_in, dim))
        weight[:, :n_pcs] = _ridge(block[present] - in_mean, target - score_mean, ridge)
        shift = np.zeros(dim)
        shift[:n_pcs] = score_mean
        readout = np.linalg.pinv(weight)
        out_mean = np.zeros(0)
        if n_out:  # held-out units: ridge from the read-in's (centred) PCs to their centred PSTHs
            heldout = np.concatenate([p[:, n_in:] for p in psth.values()])
            out_mean = heldout.mean(0)
            pcs = np.concatenate([p[:, :n_in] - in_mean for p in psth.values()]) @ weight
            readout = np.concatenate([readout, _ridge(pcs, heldout - out_mean, ridge)], axis=1)
        # read-in: (x − mean)·W + the session's mean score; read-out: its inverse, so it starts at the means
        maps.append(SessionMaps(weight, shift - in_mean @ weight, readout, np.concatenate([in_mean, out_mean]) - shift @ readout))
    return maps


def _complete(data, rank, iterations=50):
    """`data` with its missing (NaN) entries filled by iterated rank-`rank` SVD (EM-PCA), starting from
    the column means: where sessions share a low-dimensional structure, a condition a session lacks is
    filled from that structure, so the global PCs stay the shared ones."""
    missing = np.isnan(data)
    filled = np.where(missing, np.nanmean(data, axis=0), data)
    for _ in range(iterations if missing.any() else 0):
        mean = filled.mean(axis=0)
        u, singular, vt = np.linalg.svd(filled - mean, full_matrices=False)
        filled = np.where(missing, (u[:, :rank] * singular[:rank]) @ vt[:rank] + mean, data)
    return filled


def _ridge(x, y, alpha):
    """argmin_B ‖y − xB‖² + alpha‖B‖² (no intercept)."""
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)
