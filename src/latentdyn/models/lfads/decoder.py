"""LFADS's decoder (lfads-torch, README §7): controller, inferred inputs, generator and factors, bin by bin.

Generator initial state = linear(IC sample); first factors = factor map of dropout(that state);
controller initial state learned. Each bin: controller input = dropout([controller input encoding,
previous factors]) -> clipped GRU -> linear -> inferred-input mean and log-variance -> sample (the mean
when not sampling) -> generator input = [external input, inferred input] -> generator -> factors =
row-normalised map of dropout(generator state).

With the clipped-GRU generator and `eager` off, the whole loop is one autograd node with a hand-written
backward (`_FusedDecoder`, built on cells._Unroll): all the per-bin tensors go into preallocated
buffers, the backward pass walks the bins once in reverse, and every weight's gradient is one matmul
over all bins and trials. The eager per-step loop (`_unrolled`) is the reference it is held to, and
the path of the neural-ODE generator.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from latentdyn.models.lfads.cells import ClippedGRUCell, _Unroll, at_full_precision, autocast_off
from latentdyn.models.lfads.generators import ClippedGRUGenerator
from latentdyn.models.lfads.layers import RowNormalizedLinear, apply_dropout, dropout_mask, fan_in_linear


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
        self.dropout = dropout
        masks = None if eager else dropout_mask(dropout, (n_bins, *shape), like, fast=True)
        self.masks = None if masks is None else masks.unbind(0)

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
        factors = F.linear(apply_dropout(self.dropout, gen_state, not self.eager), factor_weight)
        if ext_input is None:
            ext_input = gen_state.new_zeros(n_trials, self.n_bins, self.n_ext)
        if self.eager or not isinstance(self.generator, ClippedGRUGenerator):
            return self._unrolled(gen_state, factors, factor_weight, ci, ext_input, sample)
        return self._fused(gen_state, factors, factor_weight, ci, ext_input, sample)

    def _fused(self, gen_state, factors, factor_weight, ci, ext_input, sample):
        """The fast path: the same quantities, random draws in the same order, as `_unrolled`."""
        n_trials, n_bins = gen_state.shape[0], self.n_bins
        gen_mask = dropout_mask(self.dropout, (n_bins, *gen_state.shape), gen_state, fast=True)
        gen_cell = self.generator.cell
        gen_known, gen_step = gen_cell.weight_ih.split([self.n_ext, gen_cell.weight_ih.shape[1] - self.n_ext], dim=1)
        ext_input = apply_dropout(self.dropout, ext_input, fast=True)
        generator = [gen_cell.bias_ih, ext_input.transpose(0, 1), gen_known] if self.n_ext else [gen_cell.bias_ih, None, None]
        controller = [None] * 10
        noise = None
        if self.co_dim:
            con = self.controller
            n_ci = ci.shape[-1]
            con_known, con_step = con.weight_ih.split([n_ci, con.weight_ih.shape[1] - n_ci], dim=1)
            ci = apply_dropout(self.dropout, ci, fast=True).transpose(0, 1)  # time-major (contiguous from the fast encoder)
            factor_mask = dropout_mask(self.dropout, (n_bins, *factors.shape), factors, fast=True)
            noise = ci.new_empty(n_bins, n_trials, self.co_dim).normal_() if sample else None
            controller = [
                con.bias_ih,
                ci,
                con_known,
                self.controller_initial_state.expand(1, n_trials, -1),
                con_step.T,
                con.weight_hh_zr.unsqueeze(0),
                con.weight_hh_n.unsqueeze(0),
                self.to_inferred_input.weight,
                self.to_inferred_input.bias,
                factor_mask,
            ]
        gen_states, all_factors, co_mean, co_std = at_full_precision(_FusedDecoder.apply)(
            *generator,
            gen_state.unsqueeze(0),
            gen_step.T,
            gen_cell.weight_hh_zr.unsqueeze(0),
            gen_cell.weight_hh_n.unsqueeze(0),
            factor_weight,
            gen_mask,
            factors,
            noise,
            gen_cell.clip,
            n_bins,
            *controller,
        )
        if not self.co_dim:
            co_mean = co_std = gen_state.new_zeros(n_trials, n_bins, 0)
        return DecoderOutput(gen_states.transpose(0, 1), all_factors.transpose(0, 1), co_mean, co_std)

    def _unrolled(self, gen_state, factors, factor_weight, ci, ext_input, sample):
        """lfads-torch's per-bin loop of autograd-tracked steps (`eager`: also its per-step projections
        and dropout draws)."""
        n_trials = gen_state.shape[0]
        gen_dropout = _StepDropout(self.dropout, self.n_bins, gen_state.shape, gen_state, self.eager)
        gen_drive = _InputDrive(self.generator, apply_dropout(self.dropout, ext_input, not self.eager), self.eager)
        if self.co_dim:
            con_drive = _InputDrive(self.controller, apply_dropout(self.dropout, ci, not self.eager), self.eager)
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


class _FusedDecoder(torch.autograd.Function):
    """The decoder loop (`Decoder._unrolled` without eager projections) as one autograd node.

    Inputs, time-major (bins × trials × ...), in groups of one where cells._Unroll wants them. The
    generator's: input bias (3·gen), external inputs (or None) and their weight (3·gen × n_ext), initial
    state (1 × trials × gen), inferred-input weight (co × 3·gen, transposed), recurrent weights (1 ×
    rows × gen), the factor map (fac × gen), the generator-state dropout masks (or None), the first
    factors, the posterior noise (or None: take the mean), the clip and the number of bins. Then the controller's (all None
    without one): input bias, controller-input encoding and its weight (3·con × ci), initial state,
    factor weight (fac × 3·con, transposed), recurrent weights, the inferred-input map's weight and
    bias, the factor dropout masks (or None).
    Outputs: generator states and factors (bins × trials × ...), inferred-input mean and std (trials ×
    bins × co; None without a controller).
    """

    @staticmethod
    def forward(ctx, gen_bias, ext, ext_w, gen_initial, gen_step_t, gen_w_zr, gen_w_n, factor_w, gen_mask, factors0, noise, clip, n_bins,
                con_bias, ci, ci_w, con_initial, con_step_t, con_w_zr, con_w_n, co_w, co_b, factor_mask):
        ctx.set_materialize_grads(False)
        n_trials = gen_initial.shape[1]
        has_controller = ci is not None
        gen_states = gen_initial.new_empty(n_bins, n_trials, gen_initial.shape[-1])
        gen = _Unroll(gen_initial, n_bins, clip, states=gen_states.unsqueeze(0))
        factors = gen_initial.new_empty(n_bins, n_trials, factor_w.shape[0])
        dropped_gen = None if gen_mask is None else torch.empty_like(gen_states)
        gen_w_zr_t, gen_w_n_t, factor_w_t = gen_w_zr.transpose(1, 2), gen_w_n.transpose(1, 2), factor_w.T
        gen_bias_v = gen_bias.view(1, 1, -1)
        gen_inputs = [] if ext is None else [(ext, ext_w.T.unsqueeze(0))]
        con = co_params = co_std = co_mean = co_std_out = inferred = dropped_factors = None
        if has_controller:
            co_dim = co_w.shape[0] // 2
            con = _Unroll(con_initial, n_bins, clip)
            con_w_zr_t, con_w_n_t, co_w_t = con_w_zr.transpose(1, 2), con_w_n.transpose(1, 2), co_w.T
            con_bias_v, ci_w_t, con_step_tt, gen_step_tt = con_bias.view(1, 1, -1), ci_w.T.unsqueeze(0), con_step_t.unsqueeze(0), gen_step_t.unsqueeze(0)
            dropped_factors = torch.empty_like(factors)
            co_params = gen_initial.new_empty(n_bins, n_trials, 2 * co_dim)
            co_std = gen_initial.new_empty(n_bins, n_trials, co_dim)
            inferred = None if noise is None else torch.empty_like(co_std)
        gen_state, con_state, previous_factors = gen_initial, con_initial, factors0
        for t in range(n_bins):
            step_inputs = [(x[t].unsqueeze(0), w_t) for x, w_t in gen_inputs]
            if has_controller:
                dropped = dropped_factors[t]
                if factor_mask is None:
                    dropped.copy_(previous_factors)
                else:
                    torch.mul(previous_factors, factor_mask[t], out=dropped)
                con_inputs = [(ci[t].unsqueeze(0), ci_w_t), (dropped.unsqueeze(0), con_step_tt)]
                con_state = con.step(t, con_bias_v, con_state, con_w_zr_t, con_w_n_t, inputs=con_inputs)
                params = torch.addmm(co_b, con_state[0], co_w_t, out=co_params[t])
                std = torch.exp(torch.mul(params[:, co_dim:], 0.5), out=co_std[t])
                if noise is None:
                    sampled = params[:, :co_dim]
                else:
                    sampled = torch.add(params[:, :co_dim], torch.mul(std, noise[t]), out=inferred[t])
                step_inputs.append((sampled.unsqueeze(0), gen_step_tt))
            gen_state = gen.step(t, gen_bias_v, gen_state, gen_w_zr_t, gen_w_n_t, inputs=step_inputs)
            dropped = gen_state[0] if gen_mask is None else torch.mul(gen_state[0], gen_mask[t], out=dropped_gen[t])
            previous_factors = torch.mm(dropped, factor_w_t, out=factors[t])
        if has_controller:  # trials × bins, contiguous, as the per-bin loop stacks them (randn_like follows layout)
            co_mean, co_std_out = co_params[..., :co_dim].transpose(0, 1).contiguous(), co_std.transpose(0, 1).contiguous()
            ctx.con_states, con.states, con.initial_state = con.states, None, None  # the initial state: an input
        gen.states = gen.initial_state = None  # an input and an output: through save_for_backward
        ctx.gen, ctx.con, ctx.clip = gen, con, clip
        ctx.dropped_gen, ctx.dropped_factors, ctx.co_params, ctx.inferred = dropped_gen, dropped_factors, co_params, inferred
        ctx.co_std = co_std
        ctx.save_for_backward(
            ext, ext_w, gen_initial, gen_step_t, gen_w_zr, gen_w_n, factor_w, gen_mask, noise, gen_states,
            ci, ci_w, con_initial, con_step_t, con_w_zr, con_w_n, co_w, factor_mask,
        )
        return gen_states, factors, co_mean, co_std_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    @autocast_off
    def backward(ctx, d_gen_states, d_factors, d_co_mean, d_co_std):
        (ext, ext_w, gen_initial, gen_step_t, gen_w_zr, gen_w_n, factor_w, gen_mask, noise, gen_states,
         ci, ci_w, con_initial, con_step_t, con_w_zr, con_w_n, co_w, factor_mask) = ctx.saved_tensors
        gen, con, co_std = ctx.gen, ctx.con, ctx.co_std
        n_bins, n_trials, gen_dim = gen_states.shape
        fac_dim = factor_w.shape[0]
        gen_grad = gen.start_backward(gen_states.unsqueeze(0), gen_initial)[0]
        d_gen_projected = gen_states.new_empty(1, n_bins, n_trials, 3 * gen_dim)
        d_factors_total = gen_states.new_empty(n_bins, n_trials, fac_dim)
        if con is not None:
            con_grad = con.start_backward(ctx.con_states, con_initial)[0]
            d_next_factors_buffer = torch.empty_like(d_factors_total[0])
            co_dim, con_dim = co_w.shape[0] // 2, co_w.shape[1]
            d_con_projected = gen_states.new_empty(1, n_bins, n_trials, 3 * con_dim)
            d_co_params = gen_states.new_empty(n_bins, n_trials, 2 * co_dim)
            con_step = con_step_t.T
        d_gen, d_con, d_next_factors = None, None, None
        d_gen_bias = gen_states.new_zeros(3 * gen_dim)
        d_con_bias = None if con is None else gen_states.new_zeros(3 * con_dim)
        for t in reversed(range(n_bins)):
            d_f = d_factors_total[t]
            _sum_into(d_f, None if d_factors is None else d_factors[t], d_next_factors)
            torch.mm(d_f, factor_w, out=gen_grad)
            if gen_mask is not None:
                gen_grad.mul_(gen_mask[t])
            if d_gen_states is not None:
                gen_grad.add_(d_gen_states[t])
            if d_gen is not None:
                gen_grad.add_(d_gen)
            d_gen = gen.step_back(t, d_gen_projected[:, t], gen_w_zr, gen_w_n)[0]
            d_gen_bias += d_gen_projected[0, t].sum(0)  # while in cache
            if con is None:
                continue
            d_sampled = torch.mm(gen_step_t, d_gen_projected[0, t].T).T  # faster than the transposed form
            d_params = d_co_params[t]
            d_mean, d_log_var = d_params[:, :co_dim], d_params[:, co_dim:]
            _sum_into(d_mean, d_sampled, None if d_co_mean is None else d_co_mean[:, t])
            _sum_into(d_log_var, None if noise is None else d_sampled * noise[t], None if d_co_std is None else d_co_std[:, t])
            d_log_var.mul_(co_std[t]).mul_(0.5)  # std = exp(log_var / 2)
            if d_con is None:
                torch.mm(d_params, co_w, out=con_grad)
            else:
                torch.addmm(d_con, d_params, co_w, out=con_grad)
            d_con = con.step_back(t, d_con_projected[:, t], con_w_zr, con_w_n)[0]
            d_con_bias += d_con_projected[0, t].sum(0)
            d_next_factors = torch.mm(d_con_projected[0, t], con_step, out=d_next_factors_buffer)
            if factor_mask is not None:
                d_next_factors.mul_(factor_mask[t])
        dropped_gen = gen_states if ctx.dropped_gen is None else ctx.dropped_gen
        d_factor_w = d_factors_total.reshape(-1, fac_dim).T @ dropped_gen.reshape(-1, gen_dim)
        d_gen_w_zr, d_gen_w_n = gen.weight_grads(d_gen_projected)
        flat_d_gen = d_gen_projected.view(-1, 3 * gen_dim)
        d_ext = d_ext_w = None
        if ext is not None:
            d_ext_w = flat_d_gen.T @ ext.reshape(-1, ext.shape[-1])
            d_ext = (flat_d_gen @ ext_w).view(ext.shape) if ctx.needs_input_grad[1] else None
        grads = [d_gen_bias, d_ext, d_ext_w, d_gen.unsqueeze(0), None, d_gen_w_zr, d_gen_w_n, d_factor_w, None, d_next_factors, None, None, None]
        if con is None:
            return (*grads, *[None] * 10)
        flat_d_con = d_con_projected.view(-1, 3 * con_dim)
        sampled = ctx.co_params[..., :co_dim] if ctx.inferred is None else ctx.inferred
        grads[4] = sampled.reshape(-1, co_dim).T @ flat_d_gen
        d_con_step = ctx.dropped_factors.reshape(-1, fac_dim).T @ flat_d_con
        flat_d_co_params = d_co_params.reshape(-1, 2 * co_dim)
        d_co_w = flat_d_co_params.T @ ctx.con_states.reshape(-1, con_dim)
        d_ci = (flat_d_con @ ci_w).view(ci.shape) if ctx.needs_input_grad[14] else None
        return (
            *grads,
            d_con_bias,
            d_ci,
            flat_d_con.T @ ci.reshape(-1, ci.shape[-1]),
            d_con.unsqueeze(0),
            d_con_step,
            *con.weight_grads(d_con_projected),
            d_co_w,
            flat_d_co_params.sum(0),
            None,
        )


def _sum_into(out, *terms):
    """out = the sum of the terms that are not None (zero if none is)."""
    terms = [term for term in terms if term is not None]
    if not terms:
        out.zero_()
    elif len(terms) == 1:
        out.copy_(terms[0])
    else:
        torch.add(terms[0], terms[1], out=out)
