"""NDT: the Neural Data Transformer (Ye & Pandarinath 2021; neural-data-transformers; README §11).

The model reads one token per bin over the window and the forward bins; a token is the bin's counts of
every output unit, held-in then held-out, with held-out units and forward bins zero (they are never
observed at the input). Tokens are embedded (identity, the model width then being the number of
units, or linear), scaled by √width, given positions (learned or sinusoidal) and dropout, and run
through pre-norm transformer layers with local attention (encoder.py); dropout and a linear map give
log-rates of every unit in every bin.

Training is masked modelling (masking.py): the Poisson NLL counts the masked held-in bins, and every
held-out unit and forward bin, which the model never sees; held-in entries it can see do not count.
Validation logs two losses. `recon` reconstructs the validation trials with nothing masked, so it
also scores the entries the model reads (issue 23 found it selecting an epoch far earlier than NDT's
rule on simulated reaching, with worse velocity decoding; in 2000-epoch runs here both picked one of
the last 10 epochs: encoder.py). `masked_nll` is NDT's validation loss, on which
NDT selects its checkpoint and stops (the default monitor here): the training loss on the validation
trials, with `mask_ratio` of each trial's held-in bins zeroed at the input. The masked bins are fixed
per trial (seeded by its trial index), so the loss is comparable between epochs, and all their
entries are zeroed (NDT randomises or keeps some), so no scored entry is visible at the input.

The step is CUDA-graph capturable (`graph_safe`): masks come from torch's RNG on the device, the span
ramp reads `progress.epoch_tensor` when the trainer provides it, and nothing calls `.item()`.
"""

import math

import torch
from torch import nn

from latentdyn.errors import ConfigError
from latentdyn.models.augmentations import entry_uniforms
from latentdyn.models.components import poisson_nll
from latentdyn.models.ndt.encoder import Encoder, sinusoidal_positions
from latentdyn.models.ndt.masking import BinMasking, MaskingSettings
from latentdyn.models.prediction import predict_in_chunks
from latentdyn.training.contract import StepResult

PREDICT_ROWS = 1024  # trials run at once in `predict`
VALID_MASK_SEED = 0  # seed of the validation trials' masked bins


class NDT(nn.Module):
    graph_safe = True

    def __init__(self, shapes, width, embedding, positions, encoder, masking, dropout_embedding, dropout_rates):
        super().__init__()
        self.shapes = shapes
        self.width = width
        self.embedding = embedding
        if isinstance(positions, nn.Parameter):
            self.positions = positions
        else:  # a fixed code: rebuilt with the model, so not saved
            self.register_buffer("positions", positions, persistent=False)
        self.embedding_dropout = nn.Dropout(dropout_embedding)
        self.encoder = encoder
        self.rates_dropout = nn.Dropout(dropout_rates)
        self.readout = nn.Linear(self.width, shapes.n_output)
        with torch.no_grad():  # NDT's readout initialisation
            self.readout.weight.uniform_(-0.1, 0.1)
            self.readout.bias.zero_()
        self.masking = masking

    def forward(self, tokens):
        """tokens trials × (window + forward bins) × output units -> (log-rates, final states)."""
        x = self.embedding(tokens) * math.sqrt(self.width) + self.positions
        states = self.encoder(self.embedding_dropout(x))
        return self.readout(self.rates_dropout(states)), states

    def tokens(self, heldin):
        """Held-in window counts (finite) -> the full token sequence, held-out units and forward bins zero."""
        return nn.functional.pad(heldin, (0, self.shapes.n_heldout, 0, self.shapes.n_forward))

    def infer(self, encoder_input):
        """(log-rates, states) of a batch's encoder input, unobserved (NaN) entries read as 0: inference."""
        return self(self.tokens(torch.nan_to_num(encoder_input, nan=0.0)))

    def training_step(self, batch, progress):
        epoch = progress.epoch_tensor
        epoch = torch.tensor(float(progress.epoch)) if epoch is None else epoch
        corrupted, masked_bins = self.masking(torch.nan_to_num(batch.encoder_input, nan=0.0), epoch)
        log_rates, _ = self(self.tokens(corrupted))
        scored = self._scored(batch.target, masked_bins)
        heldin = (slice(None), slice(0, self.shapes.n_bins), slice(0, self.shapes.n_input))
        terms = {"recon_masked": poisson_nll(log_rates[heldin], scored[heldin])}
        terms.update(self._unseen_terms(log_rates, batch.target))
        return StepResult(poisson_nll(log_rates, scored), terms)

    def validation_step(self, batch, progress):
        log_rates, _ = self.infer(batch.encoder_input)
        terms = {"recon": poisson_nll(log_rates, batch.target), **self._unseen_terms(log_rates, batch.target)}
        terms["masked_nll"] = self.masked_nll(batch)
        return StepResult(terms["recon"], terms)

    def masked_nll(self, batch):
        """NDT's validation loss: the mean NLL of the held-in entries of each trial's fixed masked bins
        and of every held-out unit and forward bin, from an input with those bins zeroed."""
        masked_bins = self.validation_masked_bins(batch.trial_index)
        inputs = torch.nan_to_num(batch.encoder_input, nan=0.0)
        log_rates, _ = self(self.tokens(torch.where(masked_bins.unsqueeze(-1), 0.0, inputs)))
        return poisson_nll(log_rates, self._scored(batch.target, masked_bins))

    def validation_masked_bins(self, trial_index):
        """trials × window bins boolean: each bin masked with probability `mask_ratio`, fixed by the
        trial's index (single bins, as NDT validates: no spans)."""
        uniforms = entry_uniforms(trial_index, (self.shapes.n_bins, 1), VALID_MASK_SEED)
        return uniforms[..., 0] < self.masking.settings.mask_ratio

    def _scored(self, target, masked_bins):
        """`target` with only the scored entries observed: the held-in entries of the masked bins, and
        every held-out unit and forward bin (never part of the input); the rest NaN, as `poisson_nll`
        skips them."""
        scored = torch.ones_like(target, dtype=torch.bool)
        scored[:, : self.shapes.n_bins, : self.shapes.n_input] = masked_bins.unsqueeze(-1)
        return torch.where(scored, target, torch.nan)

    def _unseen_terms(self, log_rates, target):
        """Mean NLL of the held-out units (window) and of the forward bins: never part of the input."""
        n_bins, n_input = self.shapes.n_bins, self.shapes.n_input
        terms = {}
        if self.shapes.n_heldout:
            terms["recon_heldout"] = poisson_nll(log_rates[:, :n_bins, n_input:], target[:, :n_bins, n_input:])
        if self.shapes.n_forward:
            terms["recon_forward"] = poisson_nll(log_rates[:, n_bins:], target[:, n_bins:])
        return terms


def build(params, shapes):
    n_output, n_tokens = shapes.n_output, shapes.n_recon_bins
    if params["embedding"] == "identity":
        if params["embed_dim"] is not None:
            raise ConfigError(
                "config: key 'embed_dim': applies only to 'embedding: linear' (identity: the width is the number of units)"
            )
        width, embedding = n_output, nn.Identity()
    else:
        width = params["embed_dim"] or n_output
        embedding = nn.Linear(n_output, width)
    if width % params["heads"]:
        identity = params["embedding"] == "identity"
        units = (
            f" (identity embedding: {shapes.n_input} held-in + {shapes.n_heldout} held-out units)" if identity else ""
        )
        raise ConfigError(
            f"config: key 'heads': {params['heads']} heads do not divide the model width {width}{units}; choose heads"
            " that divide it, or 'embedding: linear' with an 'embed_dim' they divide"
        )
    if params["positions"] == "learned":
        positions = nn.Parameter(torch.randn(n_tokens, width))  # N(0, 1), as nn.Embedding in NDT
    else:
        positions = sinusoidal_positions(n_tokens, width)
    encoder = Encoder(
        width,
        n_tokens,
        params["layers"],
        params["heads"],
        params["ff_dim"],
        params["dropout_attention"],
        params["context_backward"],
        params["context_forward"],
        params["init"],
    )
    masking = BinMasking(MaskingSettings.from_params(params))
    return NDT(
        shapes, width, embedding, positions, encoder, masking, params["dropout_embedding"], params["dropout_rates"]
    )


def predict(model, prepared, params, device):
    """Rates of every split and the final layer's states (what the rates are read from), over the
    window and forward bins: eval mode, nothing masked, held-out units and forward bins zero at the input."""
    return predict_in_chunks(model, prepared, device, _rates_and_states, PREDICT_ROWS)


def _rates_and_states(model, encoder_input, ext_input):
    """One pass over a chunk; this kind has no external-input pathway, so `ext_input` is not read."""
    log_rates, states = model.infer(encoder_input)
    return {"rates": log_rates.exp(), "states": states}


def infer_rates(model, encoder_input):
    """Rates of one unmasked pass: a real-time decoder's call (the latency study times it), the rates
    `predict` gives."""
    return model.infer(encoder_input)[0].exp()
