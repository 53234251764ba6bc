"""Sequential autoencoder with a GRU or neural-ODE generator (Sedler, Versteeg & Pandarinath 2023).

Bidirectional GRU encoder -> initial condition of the latent state -> autonomous dynamics (GRU or
neural ODE) unrolled over the trial -> linear readout to log-rates, trained with a Poisson loss.
The NODE is trained with the paper's curriculum: the loss covers the first `points_per_group` time
steps, `points_per_group` more every `epochs_per_group` epochs, renormalised so its scale is constant.
Paper settings (configs/model/{gru,node}.yaml of the paper's repository): encoder 64, dropout 0.05,
NODE vector field 128 tanh units, Adam lr 5e-3 / wd 1e-5 (NODE) and 1e-3 / 1e-4 (GRU), batch 650.

Held-out-entry validation (`sv_folds` = k ≥ 2) leaves training untouched. In validation, the observed
entries of every trial are split into k fixed folds; each fold's NLL is taken from a forward pass whose
input lacks that fold (the rest scaled by k/(k − 1), as sample validation does), and the mean over all
entries is logged as `sv_nll`. The ordinary validation NLL rewards a map that copies the observed input
to the output; this one cannot, because no entry it scores was in the input. With SBTT at 2 of 29
channels that copying sets in after ~150 epochs and ordinary validation selects it (README §9).

Stacked training (`stack`): K models of one shape (the attractor study's systems and seeds of one
generator and latent size) train as one model whose every tensor is member-first (models/stacking.py);
the code below is written for such leading dimensions, losses are means over each member's own entries.
Held-out-entry validation is not stacked.
"""

import torch
from torch import nn

from latentdyn.models import augmentations
from latentdyn.models.components import (
    BidirectionalGRUEncoder,
    GRUDynamics,
    LinearReadout,
    NeuralODEDynamics,
    poisson_nll,
    poisson_nll_elementwise,
)
from latentdyn.errors import ConfigError
from latentdyn.models.prediction import predict_in_chunks
from latentdyn.models.stacking import stack_modules
from latentdyn.training.contract import StepResult

STATE_LATENT = "states"  # the dynamical state, under latents/ in the output
PREDICT_ROWS = 1024  # trials run at once in `predict`
ENTRY_DIMS = (-3, -2, -1)  # trials × bins × units: a loss averages over these, per member of a stack


class SequentialAutoencoder(nn.Module):
    def __init__(self, encoder, dynamics, readout, n_steps, curriculum=None, sv_folds=None, sv_seed=0):
        super().__init__()
        self.encoder = encoder
        self.dynamics = dynamics
        self.readout = readout
        self.n_steps = n_steps
        self.curriculum = curriculum
        self.sv_folds = sv_folds
        self.sv_seed = sv_seed

    def forward(self, spikes):
        """Return (log_rates, latents) over the reconstructed bins; unobserved (NaN) inputs read as zeros."""
        inputs = torch.nan_to_num(spikes, nan=0.0)
        latents = self.dynamics.unroll(self.encoder(inputs), self.n_steps)
        return self.readout(latents), latents

    def training_step(self, batch, progress):
        log_rates, _ = self(batch.encoder_input)
        recon = poisson_nll(log_rates, batch.target, self._step_weights(progress, log_rates.device), ENTRY_DIMS)
        return StepResult(recon, {"recon": recon})

    def validation_step(self, batch, progress):
        result = self.training_step(batch, progress)
        if self.sv_folds:
            result.terms["sv_nll"] = self.held_out_entry_nll(batch, progress)
        return result

    def held_out_entry_nll(self, batch, progress):
        """Mean Poisson NLL of the observed entries, each predicted from an input without its fold."""
        inputs = batch.encoder_input
        folds = augmentations.entry_folds(batch.trial_index, inputs.shape[1:], self.sv_folds, self.sv_seed)
        observed = batch.observed
        counts = torch.nan_to_num(batch.target, nan=0.0)
        weights = self._step_weights(progress, inputs.device)
        total = counts.new_zeros(())
        scored = counts.new_zeros(())
        for fold in range(self.sv_folds):
            held_inputs = folds == fold
            log_rates, _ = self(augmentations.remove_held_out(inputs, held_inputs, 1 / self.sv_folds))
            held = augmentations.pad_to(held_inputs, counts.shape, False) & observed
            total = total + (poisson_nll_elementwise(log_rates, counts) * held * weights).sum()
            scored = scored + held.sum()
        return total / scored.clamp_min(1)

    def _step_weights(self, progress, device):
        """The curriculum's per-time-step loss weights, shaped to broadcast over trials and units (and
        over a stack's members, each at its own epoch)."""
        if progress.member_epochs is None:
            return curriculum_weights(self.n_steps, progress.epoch, self.curriculum).to(device)[None, :, None]
        weights = [curriculum_weights(self.n_steps, epoch, self.curriculum) for epoch in progress.member_epochs]
        return torch.stack(weights).to(device)[:, None, :, None]


def build(params, shapes):
    latent_size = params["latent_size"]
    encoder = BidirectionalGRUEncoder(shapes.n_input, params["encoder_size"], latent_size, params["dropout"])
    n_steps = shapes.n_recon_bins
    if params["dynamics"] == "gru":
        dynamics = GRUDynamics(latent_size)
    else:
        dynamics = NeuralODEDynamics(latent_size, params["vector_field_size"], n_steps, params["solver"])
    readout = LinearReadout(latent_size, shapes.n_output)
    return SequentialAutoencoder(
        encoder, dynamics, readout, n_steps, params.get("curriculum"), params.get("sv_folds"), params.get("sv_seed", 0)
    )


def stack(models, generators):
    """The K `models` (built from one params) as one model trained at once (training/stacked.py)."""
    if models[0].sv_folds:
        raise ConfigError("config: key 'sv_folds': held-out-entry validation is not computed for stacked training")
    return stack_modules(models, generators)


def curriculum_weights(n_steps, epoch, curriculum):
    """Per-time-step loss weights: 1 on the steps trained so far, 0 after, mean weight 1."""
    weights = torch.ones(n_steps)
    if curriculum:
        n_points = min((epoch // curriculum["epochs_per_group"] + 1) * curriculum["points_per_group"], n_steps)
        weights[n_points:] = 0.0
        weights *= n_steps / n_points
    return weights


def predict(model, prepared, params, device):
    """Rates (spikes per bin) and latent states for every trial of every split, in eval mode."""
    return predict_in_chunks(model, prepared, device, _rates_and_states, PREDICT_ROWS)


def _rates_and_states(model, encoder_input, ext_input):
    """One pass over a chunk; this kind has no external-input pathway, so `ext_input` is not read."""
    log_rates, states = model(encoder_input)
    return {"rates": torch.exp(log_rates), STATE_LATENT: states}
