"""LFADS's decoder (lfads-torch, README §7): controller, inferred inputs, generator and factors, bin by bin.

Generator initial state = linear(IC sample); first factors = factor map of dropout(that state);
controller initial state learned. Each bin: controller input = dropout([controller input encoding,
previous factors]) -> clipped GRU -> linear -> inferred-input mean and log-variance -> sample (the mean
when not sampling) -> generator input = [external input, inferred input] -> generator -> factors =
row-normalised map of dropout(generator state).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from latentdyn.models.lfads.cells import ClippedGRUCell
from latentdyn.models.lfads.layers import RowNormalizedLinear, fan_in_linear


@dataclass
class DecoderOutput:
    gen_states: torch.Tensor  # trials × bins × gen_dim
    factors: torch.Tensor  # trials × bins × fac_dim
    co_mean: torch.Tensor  # trials × bins × co_dim: the inferred inputs' posterior
    co_std: torch.Tensor


class _InputDrive:
    """The input side W x + b of a recurrence whose input is [a part known for all bins, a part made each bin].

    `module` has `weight_ih` (outputs × inputs) and `bias_ih` (or None). The known part is projected for
    all bins in one matmul, time-major so each bin's slice is contiguous; `eager` instead projects the
    whole concatenated input inside each step, as lfads-torch does (the benchmark's reference). Bins
    are taken by one `unbind`: indexing bin t in every step would, in the backward pass, fill a
    zero gradient of the whole sequence per step.
    """

    def __init__(self, module, known, eager):
        self.eager, self.weight, self.bias = eager, module.weight_ih, module.bias_ih
        if eager:
            self.known = known.unbind(1)
        else:
            n_known = known.shape[-1]
            known_weight, step_weight = self.weight.split([n_known, self.weight.shape[1] - n_known], dim=1)
            self.projected = F.linear(known.transpose(0, 1), known_weight, self.bias).unbind(0)
            self.step_weight = step_weight.T.contiguous()

    def at(self, t, step_input=None):
        if self.eager:
            parts = [self.known[t]] if step_input is None else [self.known[t], step_input]
            return F.linear(torch.cat(parts, dim=-1), self.weight, self.bias)
        if step_input is None:
            return self.projected[t]
        return torch.addmm(self.projected[t], step_input, self.step_weight)


class _StepDropout:
    """Dropout of a per-bin quantity: all bins' masks drawn in one call (one RNG launch instead of one
    per bin); `eager` draws in each step as lfads-torch does. Identity outside training."""

    def __init__(self, dropout, n_bins, shape, like, eager):
        active = dropout.training and dropout.p > 0 and not eager
        self.dropout = dropout
        self.masks = dropout(like.new_ones(n_bins, *shape)).unbind(0) if active else None

    def at(self, t, values):
        return self.dropout(values) if self.masks is None else values * self.masks[t]


class Decoder(nn.Module):
    def __init__(
        self, generator, *, ic_dim, gen_dim, fac_dim, ci_size, con_dim, co_dim, n_ext, n_bins, clip, dropout_rate, eager
    ):
        super().__init__()
        self.generator = generator
        self.ic_to_gen = fan_in_linear(ic_dim, gen_dim)
        self.factor_map = RowNormalizedLinear(gen_dim, fac_dim)
        self.dropout = nn.Dropout(dropout_rate)
        self.co_dim, self.n_ext, self.n_bins, self.eager = co_dim, n_ext, n_bins, eager
        if co_dim:
            self.controller = ClippedGRUCell(ci_size + fac_dim, con_dim, clip)
            self.controller_initial_state = nn.Parameter(torch.zeros(con_dim))
            self.to_inferred_input = fan_in_linear(con_dim, 2 * co_dim)

    def forward(self, ic_sample, ci, ext_input, sample):
        """Unroll over the reconstructed bins. `ci`: controller-input encoding (None without a
        controller); `ext_input`: trials × bins × n_ext or None (zeros); `sample`: draw the inferred
        inputs from their posterior rather than take its mean."""
        n_trials = ic_sample.shape[0]
        factor_weight = self.factor_map.normalized_weight()  # once, not per bin
        gen_state = self.ic_to_gen(ic_sample)
        factors = F.linear(self.dropout(gen_state), factor_weight)
        gen_dropout = _StepDropout(self.dropout, self.n_bins, gen_state.shape, gen_state, self.eager)
        if ext_input is None:
            ext_input = gen_state.new_zeros(n_trials, self.n_bins, self.n_ext)
        gen_drive = _InputDrive(self.generator, self.dropout(ext_input), self.eager)
        if self.co_dim:
            con_drive = _InputDrive(self.controller, self.dropout(ci), self.eager)
            con_state = self.controller_initial_state.expand(n_trials, -1)
            factor_dropout = _StepDropout(self.dropout, self.n_bins, factors.shape, factors, self.eager)
            noise = ci.new_empty(self.n_bins, n_trials, self.co_dim).normal_().unbind(0) if sample else None
        gen_states, all_factors, co_means, co_stds = [], [], [], []
        for t in range(self.n_bins):
            inferred_input = None
            if self.co_dim:
                con_state = self.controller.advance(con_drive.at(t, factor_dropout.at(t, factors)), con_state)
                co_mean, co_log_var = self.to_inferred_input(con_state).chunk(2, dim=-1)
                co_std = torch.exp(0.5 * co_log_var)
                inferred_input = co_mean if noise is None else co_mean + co_std * noise[t]
                co_means.append(co_mean)
                co_stds.append(co_std)
            gen_state = self.generator.advance(gen_drive.at(t, inferred_input), gen_state)
            factors = F.linear(gen_dropout.at(t, gen_state), factor_weight)
            gen_states.append(gen_state)
            all_factors.append(factors)
        no_inputs = gen_state.new_zeros(n_trials, self.n_bins, 0)
        return DecoderOutput(
            gen_states=torch.stack(gen_states, dim=1),
            factors=torch.stack(all_factors, dim=1),
            co_mean=torch.stack(co_means, dim=1) if co_means else no_inputs,
            co_std=torch.stack(co_stds, dim=1) if co_stds else no_inputs,
        )
