"""LFADS's two encoders (lfads-torch, README §7): initial-condition posterior and controller inputs."""

import torch
from torch import nn
from torch.nn import functional as F

from latentdyn.models.lfads.cells import BidirectionalClippedGRU, final_states, run_bidirectional
from latentdyn.models.lfads.layers import apply_dropout, fan_in_linear


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
        self.fast = not eager

    def forward(self, inputs):
        if self.fast:
            return self.posterior(final_states(*run_bidirectional([self.gru], [inputs[:, : self.n_bins]])[0]))
        _, final = self.gru(inputs[:, : self.n_bins])
        return self.posterior(final)

    def posterior(self, final):
        """IC posterior (mean, std) from the encoder GRU's final states."""
        mean, log_var = self.to_posterior(apply_dropout(self.dropout, final, self.fast)).chunk(2, dim=-1)
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
        if not self.gru.eager:
            return self.align_time_major(*run_bidirectional([self.gru], [inputs[:, self.ic_enc_seq_len :]])[0])
        states, _ = self.gru(inputs[:, self.ic_enc_seq_len :])
        return self.align(states)

    def align(self, states):
        """The encoder GRU's outputs (trials × its bins × 2·enc) lagged and padded to the reconstructed bins."""
        forward_states, backward_states = states.chunk(2, dim=-1)
        n_bins, lag = states.shape[1], self.lag
        delayed = F.pad(forward_states, (0, 0, lag, 0))[:, :n_bins]
        advanced = F.pad(backward_states, (0, 0, 0, lag))[:, lag:]
        after = self.n_recon_bins - self.ic_enc_seq_len - n_bins
        return F.pad(torch.cat([delayed, advanced], dim=-1), (0, 0, self.ic_enc_seq_len, after))

    def align_time_major(self, forward_states, reversed_states):
        """`align` from `run_bidirectional`'s time-major states, written straight into a time-major
        buffer (what the controller's input projection reads); returned as a trials × bins × 2·enc view."""
        n_bins, n_trials, hidden = forward_states.shape
        lag, first = self.lag, self.ic_enc_seq_len
        aligned = forward_states.new_zeros(self.n_recon_bins, n_trials, 2 * hidden)
        if lag < n_bins:
            aligned[first + lag : first + n_bins, :, :hidden] = forward_states[: n_bins - lag]
            # backward state at bin t + lag = reversed_states[n_bins - 1 - t - lag], for t < n_bins - lag
            aligned[first : first + n_bins - lag, :, hidden:] = reversed_states[: n_bins - lag].flip(0)
        return aligned.transpose(0, 1)


def encode_both(ic_encoder, ci_encoder, inputs):
    """(IC mean, IC std, controller-input encoding): the two encoders' four GRUs run as one fused
    recurrence where they can (the fast path, same sizes, both reading every bin), else one by one."""
    ic_gru, ci_gru = ic_encoder.gru, ci_encoder.gru
    fusable = (
        not ic_gru.eager
        and not ci_gru.eager
        and ic_encoder.n_bins is None
        and ci_encoder.ic_enc_seq_len == 0
        and ic_gru.initial_states.shape == ci_gru.initial_states.shape
        and ic_gru.forward_gru.cell.input_size == ci_gru.forward_gru.cell.input_size
    )
    if not fusable:
        ci = ci_encoder(inputs)
        return (*ic_encoder(inputs), ci)
    ic_states, ci_states = run_bidirectional([ic_gru, ci_gru], [inputs, inputs])
    ci = ci_encoder.align_time_major(*ci_states)
    return (*ic_encoder.posterior(final_states(*ic_states)), ci)
