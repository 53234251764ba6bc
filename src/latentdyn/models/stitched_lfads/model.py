"""Multisession ("stitched") LFADS (Pandarinath et al. 2018; README §10): one LFADS model whose encoders,
controller and generator every session shares, with a linear read-in and read-out per session.

Why a kind of its own wrapping LFADS (rather than a `sessions` setting of the LFADS kind): its data is a
stitched dataset (data/stitch.py: a row holds one trial of every session, units side by side), its
read-ins start from the training data (principal-component regression, pcr.py), so it trains through
`train` below, and its loss averages per session; every other LFADS setting and part is LFADS's own
(`extends: lfads`, models/lfads/model.py), so CD, sample validation, SBTT and the CUDA-graph step work
unchanged. On an ordinary single-session dataset it is LFADS with a read-in before its encoders.

A step: each session's held-in units go through its read-in; the sessions' trials are stacked into one
batch of sessions × rows trials for the shared encoders, controller and generator (one batched pass
whatever the sessions' neuron counts); each session's factors go through its read-out back to its own
units. Every batch holds equal trials of every session (the stitched rows), and the reconstruction is
the unweighted mean of the per-session means (§10), so a session with many neurons does not dominate.
"""

import numpy as np
import torch
from torch import nn

from latentdyn.errors import ConfigError
from latentdyn.models import augmentations
from latentdyn.models.lfads import model as lfads
from latentdyn.models.lfads.distributions import Readout
from latentdyn.models.stitched_lfads.pcr import pcr_maps, session_psths

STATE_LATENT = lfads.STATE_LATENT
predict = lfads.predict

__all__ = ["STATE_LATENT", "build", "predict", "train", "initialise"]


class SessionReadin(nn.Module):
    """Each session's held-in units -> `dim` channels; the sessions' trials stacked session after session."""

    def __init__(self, n_heldin, dim):
        super().__init__()
        self.n_heldin = list(n_heldin)
        self.layers = nn.ModuleList(nn.Linear(n, dim) for n in self.n_heldin)

    def forward(self, inputs):
        return torch.cat([layer(x) for layer, x in zip(self.layers, inputs.split(self.n_heldin, dim=-1))])


class SessionReadout(nn.Module):
    """Each session's factors -> the distribution's parameters of its own units, placed in the stitched
    data's unit order (every session's held-in units, then every session's held-out units)."""

    def __init__(self, fac_dim, session_units, n_params):
        super().__init__()
        self.layers = nn.ModuleList(Readout(fac_dim, n_in + n_out, n_params) for n_in, n_out in session_units)
        starts = np.cumsum([0] + [n_in + n_out for n_in, n_out in session_units])
        heldin = [np.arange(start, start + n_in) for start, (n_in, _) in zip(starts, session_units)]
        heldout = [np.arange(start + n_in, start + n_in + n_out) for start, (n_in, n_out) in zip(starts, session_units)]
        self.register_buffer("order", torch.as_tensor(np.concatenate(heldin + heldout), dtype=torch.int64), persistent=False)

    def forward(self, factors):
        parts = [layer(f) for layer, f in zip(self.layers, factors.chunk(len(self.layers)))]
        return torch.cat(parts, dim=-2).index_select(-2, self.order)


class StitchedLFADS(lfads.LFADS):
    FUSED_MEAN = False  # the reconstruction is a mean of per-session means

    def __init__(self, readin, session_units, **parts):
        super().__init__(**parts)
        self.readin = readin
        self.n_sessions = len(session_units)
        session_of_unit = np.concatenate([np.repeat(np.arange(self.n_sessions), [u[group] for u in session_units])
                                          for group in (0, 1)])
        one_hot = torch.nn.functional.one_hot(torch.as_tensor(session_of_unit), self.n_sessions)
        self.register_buffer("unit_session", one_hot.float(), persistent=False)

    def encode(self, inputs):
        return super().encode(self.readin(inputs))

    def latents_by_trial(self, value):
        """sessions·rows trials → rows × … × (sessions · dims): a row's sessions side by side, as its units are."""
        return value.unflatten(0, (self.n_sessions, -1)).movedim(0, -2).flatten(-2)

    def _sample_validation_mask(self, trial_index, shape):
        """Per session, keyed by the session's own trial (stitched rows cycle short sessions) and session."""
        aug = self.augmentation
        index = trial_index.view(len(trial_index), -1)
        return torch.cat([
            augmentations.sample_validation_mask(index[:, s], (shape[0], n), aug.sv_rate, aug.sv_seed + s, aug.ic_enc_seq_len)
            for s, n in enumerate(self.readin.n_heldin)
        ], dim=-1)

    def _mean_over_entries(self, values, included):
        """The unweighted mean over sessions of each session's mean over its included entries (§10)."""
        included = included.to(values.dtype)
        sums = (values * included).flatten(0, -2).sum(0) @ self.unit_session
        counts = included.flatten(0, -2).sum(0) @ self.unit_session
        return (sums / counts.clamp_min(1)).mean()


def build(params, shapes):
    if shapes.n_ext:
        raise ConfigError("config: a stitched_lfads model takes no external inputs (each session would need its own)")
    pcr_readout = params["readout_init"] == "pcr"
    if pcr_readout and (params["readin_init"] != "pcr" or params["fac_dim"] != params["readin_dim"]
                        or params["reconstruction"] != "poisson"):
        raise ConfigError(
            f"config: key 'readout_init': pcr needs readin_init pcr, fac_dim = readin_dim ({params['fac_dim']} vs "
            f"{params['readin_dim']}) and poisson reconstruction; set readout_init: random"
        )
    units = tuple(shapes.session_units) or ((shapes.n_input, shapes.n_heldout),)
    parts = lfads.parts(params, shapes, params["readin_dim"])
    parts["readout"] = SessionReadout(params["fac_dim"], units, parts["distribution"].n_params)
    model = StitchedLFADS(SessionReadin([n_in for n_in, _ in units], params["readin_dim"]), units, **parts)
    trainable = params["readin_trainable"]
    model.readin.requires_grad_(params["readin_init"] == "random" if trainable is None else trainable)
    model.readout.requires_grad_(params["readout_trainable"])
    return model


def initialise(model, prepared, params):
    """Set the read-ins (and read-outs) by principal-component regression on the training trials (pcr.py),
    as the params ask."""
    if params["readin_init"] != "pcr":
        return
    psths, units = session_psths(prepared, params["pcr_smooth_ms"])
    maps = pcr_maps(psths, units, params["readin_dim"], params["pcr_ridge"])
    with torch.no_grad():
        for layer, session in zip(model.readin.layers, maps):
            layer.weight.copy_(torch.as_tensor(session.readin_weight.T))
            layer.bias.copy_(torch.as_tensor(session.readin_bias))
        if params["readout_init"] == "pcr":
            for readout, session in zip(model.readout.layers, maps):
                readout.linear.weight.copy_(torch.as_tensor(session.readout_weight.T))
                readout.linear.bias.copy_(torch.as_tensor(session.readout_bias))


def train(model, prepared, params, *, run_dir, seed, device, identity):
    """PCR initialisation from the training trials, then the shared trainer. A resumed run restores every
    weight from its checkpoint, so it continues exactly where it stopped."""
    from latentdyn.training.trainer import TrainerSettings, fit

    initialise(model, prepared, params)
    fit(model, prepared, TrainerSettings.from_params(params), run_dir=run_dir, seed=seed, device=device, identity=identity)
