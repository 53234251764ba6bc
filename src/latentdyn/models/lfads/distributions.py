"""Reconstruction distributions: what the readout's outputs mean, their NLL, and the rate they imply.

Each has `n_params` parameters per neuron (the readout's output holds them as trials × bins × neurons
× n_params), `nll(params, data)` per entry (data finite: unobserved entries are masked by the caller)
and `mean(params)`, written to the output as the rate. lfads-torch's set (README §7).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from latentdyn.models.components import poisson_nll_elementwise
from latentdyn.models.lfads.cells import at_full_precision, autocast_off
from latentdyn.models.lfads.layers import fan_in_linear


def gamma_nll(x, log_alpha, log_beta):
    alpha = torch.exp(log_alpha)
    return torch.lgamma(alpha) - alpha * log_beta - (alpha - 1) * torch.log(x) + torch.exp(log_beta) * x


class Poisson(nn.Module):
    """Log-rate per neuron; the full NLL (with log n!)."""

    n_params = 1

    def nll(self, params, data):
        return poisson_nll_elementwise(params[..., 0], data)

    def mean(self, params):
        return torch.exp(params[..., 0])

    def masked_mean_nll(self, params, data, counted, trained=None):
        """The mean NLL over the `counted` entries, its gradient only through the `trained` ones (all
        when None): `masked_mean(gradient_only_where(nll(params, data), trained), counted)` in one
        autograd node, whose backward is the closed form (exp(log-rate) − data) · counted · trained / n
        rather than the backward of each of those ops over the whole batch."""
        return at_full_precision(_PoissonMaskedMean.apply)(params.squeeze(-1), data, counted, trained)  # a view both ways (not select)


class _PoissonMaskedMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_rates, data, counted, trained):
        rates = torch.exp(log_rates)
        nll = torch.sub(rates, data * log_rates).add_(torch.lgamma(data + 1))  # as poisson_nll_elementwise
        n_counted = counted.sum().clamp_min(1)
        value = torch.where(counted, nll, 0.0).sum() / n_counted
        ctx.save_for_backward(rates, data, counted if trained is None else counted & trained, n_counted)
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    @autocast_off
    def backward(ctx, grad):
        rates, data, weight, n_counted = ctx.saved_tensors
        return torch.where(weight, rates - data, 0.0).mul_(grad / n_counted), None, None, None


class Gaussian(nn.Module):
    """Mean and log-variance per neuron; for continuous data (e.g. EMG)."""

    n_params = 2

    def nll(self, params, data):
        mean, log_var = params.unbind(-1)
        return 0.5 * (math.log(2 * math.pi) + log_var + (data - mean) ** 2 * torch.exp(-log_var))

    def mean(self, params):
        return params[..., 0]


class Gamma(nn.Module):
    """Log shape α and log rate β per neuron. Zeros are outside its support (their NLL is infinite,
    lfads-torch issue #23): data with zeros need the zero-inflated gamma."""

    n_params = 2

    def nll(self, params, data):
        return gamma_nll(data, *params.unbind(-1))

    def mean(self, params):
        log_alpha, log_beta = params.unbind(-1)
        return torch.exp(log_alpha - log_beta)


class ZeroInflatedGamma(nn.Module):
    """Zero with probability 1 − q, else `location` + Gamma(α, β): deconvolved calcium events (RADICaL).

    Parameters per neuron and bin: log α, log β, logit q. `location` is per neuron (the smallest
    event size a deconvolution reports): nonzero data are measured from it, clamped to stay in the
    gamma's support.
    """

    n_params = 3
    SUPPORT_FLOOR = 1e-6

    def __init__(self, n_neurons, location):
        super().__init__()
        self.register_buffer("location", torch.full((n_neurons,), float(location)))

    def nll(self, params, data):
        log_alpha, log_beta, logit_q = params.unbind(-1)
        is_zero = data == 0
        excess = torch.where(is_zero, 1.0, (data - self.location).clamp_min(self.SUPPORT_FLOOR))
        nonzero = gamma_nll(excess, log_alpha, log_beta) - F.logsigmoid(logit_q)
        return torch.where(is_zero, -F.logsigmoid(-logit_q), nonzero)

    def mean(self, params):
        log_alpha, log_beta, logit_q = params.unbind(-1)
        return torch.sigmoid(logit_q) * (self.location + torch.exp(log_alpha - log_beta))


def make_distribution(name, n_neurons, zig_location=0.0):
    if name == "zig":
        return ZeroInflatedGamma(n_neurons, zig_location)
    return {"poisson": Poisson, "gaussian": Gaussian, "gamma": Gamma}[name]()


class Readout(nn.Module):
    """Factors -> the distribution's parameters for every neuron (init std 1/√in, bias 0, §7)."""

    def __init__(self, fac_dim, n_neurons, n_params):
        super().__init__()
        self.n_neurons, self.n_params = n_neurons, n_params
        self.linear = fan_in_linear(fac_dim, n_neurons * n_params)

    def forward(self, factors):
        return self.linear(factors).unflatten(-1, (self.n_params, self.n_neurons)).transpose(-1, -2)
