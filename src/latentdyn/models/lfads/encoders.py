"""LFADS's two encoders (lfads-torch, README §7): initial-condition posterior and controller inputs."""

import torch
from torch import nn
from torch.nn import functional as F

from latentdyn.models.lfads.cells import BidirectionalClippedGRU
from latentdyn.models.lfads.layers import fan_in_linear


class InitialConditionEncoder(nn.Module):
    """Bidirectional clipped GRU over the leading `ic_enc_seq_len` bins (all when 0) -> final states ->
    dropout -> linear -> IC posterior mean and std = sqrt(exp(logvar) + var_min)."""

    def __init__(self, input_size, enc_dim, ic_dim, clip, var_min, dropout_rate, ic_enc_seq_len, eager):
        super().__init__()
        self.gru = BidirectionalClippedGRU(input_size, enc_dim, clip, eager)
        self.dropout = nn.Dropout(dropout_rate)
        self.to_posterior = fan_in_linear(2 * enc_dim, 2 * ic_dim)
        self.var_min = var_min
        self.n_bins = ic_enc_seq_len or None

    def forward(self, inputs):
        _, final = self.gru(inputs[:, : self.n_bins])
        mean, log_var = self.to_posterior(self.dropout(final)).chunk(2, dim=-1)
        return mean, torch.sqrt(torch.exp(log_var) + self.var_min)


class ControllerInputEncoder(nn.Module):
    """Bidirectional clipped GRU over the bins after the IC-only ones, aligned to the reconstructed bins.

    The forward states are delayed by `lag` bins and the backward ones advanced by `lag`, so the
    controller at bin t has seen the data only up to t − lag from the past side (and from t + lag on
    from the future side); bins the encoder does not cover (IC-only bins before, forward-prediction
    bins after) read zeros.
    """

    def __init__(self, input_size, enc_dim, clip, lag, ic_enc_seq_len, n_recon_bins, eager):
        super().__init__()
        self.gru = BidirectionalClippedGRU(input_size, enc_dim, clip, eager)
        self.lag, self.ic_enc_seq_len, self.n_recon_bins = lag, ic_enc_seq_len, n_recon_bins
        self.output_size = 2 * enc_dim

    def forward(self, inputs):
        states, _ = self.gru(inputs[:, self.ic_enc_seq_len :])
        forward_states, backward_states = states.chunk(2, dim=-1)
        n_bins, lag = states.shape[1], self.lag
        delayed = F.pad(forward_states, (0, 0, lag, 0))[:, :n_bins]
        advanced = F.pad(backward_states, (0, 0, 0, lag))[:, lag:]
        after = self.n_recon_bins - self.ic_enc_seq_len - n_bins
        return F.pad(torch.cat([delayed, advanced], dim=-1), (0, 0, self.ic_enc_seq_len, after))
