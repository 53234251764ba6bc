"""Sequential autoencoder with a GRU or neural-ODE generator (Sedler, Versteeg & Pandarinath 2023).

Bidirectional GRU encoder -> initial condition of the latent state -> autonomous dynamics (GRU or
neural ODE) unrolled over the trial -> linear readout to log-rates, trained with a Poisson loss.
The NODE is trained with the paper's curriculum: the loss covers the first `points_per_group` time
steps, `points_per_group` more every `epochs_per_group` epochs, renormalised so its scale is constant.
Paper settings (configs/model/{gru,node}.yaml of the paper's repository): encoder 64, dropout 0.05,
NODE vector field 128 tanh units, Adam lr 5e-3 / wd 1e-5 (NODE) and 1e-3 / 1e-4 (GRU), batch 650.
"""

import numpy as np
import torch
from torch import nn

from latentdyn.models.components import (
    BidirectionalGRUEncoder,
    GRUDynamics,
    LinearReadout,
    NeuralODEDynamics,
    poisson_nll,
)
from latentdyn.training.loop import TrainingSettings, train


class SequentialAutoencoder(nn.Module):
    def __init__(self, encoder, dynamics, readout):
        super().__init__()
        self.encoder = encoder
        self.dynamics = dynamics
        self.readout = readout

    def forward(self, spikes):
        """Return (log_rates, latents); unobserved (NaN) inputs are read as zeros."""
        inputs = torch.nan_to_num(spikes, nan=0.0)
        latents = self.dynamics.unroll(self.encoder(inputs), spikes.shape[1])
        return self.readout(latents), latents


def build_model(params, n_neurons, n_steps):
    latent_size = params["latent_size"]
    encoder = BidirectionalGRUEncoder(n_neurons, params["encoder_size"], latent_size, params["dropout"])
    if params["dynamics"] == "gru":
        dynamics = GRUDynamics(latent_size)
    elif params["dynamics"] == "node":
        dynamics = NeuralODEDynamics(latent_size, params["vector_field_size"], n_steps, params.get("solver", "rk4"))
    else:
        raise ValueError(f"unknown dynamics '{params['dynamics']}' (expected 'gru' or 'node')")
    return SequentialAutoencoder(encoder, dynamics, LinearReadout(latent_size, n_neurons))


def curriculum_weights(n_steps, epoch, curriculum):
    """Per-time-step loss weights: 1 on the steps trained so far, 0 after, mean weight 1."""
    weights = torch.ones(n_steps)
    if curriculum:
        n_points = min((epoch // curriculum["epochs_per_group"] + 1) * curriculum["points_per_group"], n_steps)
        weights[n_points:] = 0.0
        weights *= n_steps / n_points
    return weights


def make_loss(curriculum):
    def loss(model, spikes, epoch):
        log_rates, _ = model(spikes)
        weights = curriculum_weights(spikes.shape[1], epoch, curriculum).to(spikes.device)
        return poisson_nll(log_rates, spikes, weights[None, :, None])

    return loss


def fit_predict(data, attrs, params, *, run_dir, seed, device):
    train_spikes = torch.as_tensor(data["train_spikes_heldin"], dtype=torch.float32)
    eval_spikes = torch.as_tensor(data["eval_spikes_heldin"], dtype=torch.float32)
    _, n_steps, n_neurons = train_spikes.shape
    torch.manual_seed(seed)
    model = build_model(params, n_neurons, n_steps)
    settings = TrainingSettings(
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        weight_decay=params["weight_decay"],
        log_every=params.get("log_every", 25),
    )
    train(model, make_loss(params.get("curriculum")), train_spikes, eval_spikes, settings, run_dir=run_dir, seed=seed, device=device)
    outputs = {}
    for split in ("train", "eval", "test"):
        key = f"{split}_spikes_heldin"
        if key in data:
            rates, latents = infer(model, data[key], device)
            outputs[f"{split}_rates_heldin"] = rates
            outputs[f"{split}_latents"] = latents
    return outputs


@torch.no_grad()
def infer(model, spikes, device, batch_size=1024):
    """Rates (spikes per bin) and latent states for every trial, in eval mode."""
    model.eval()
    rates, latents = [], []
    for batch in torch.as_tensor(spikes, dtype=torch.float32).split(batch_size):
        log_rates, states = model(batch.to(device))
        rates.append(torch.exp(log_rates).cpu().numpy())
        latents.append(states.cpu().numpy())
    return np.concatenate(rates), np.concatenate(latents)
