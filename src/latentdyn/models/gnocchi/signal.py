"""Spike counts <-> the continuous signal GNOCCHI's diffusion runs on.

Choice (issue 19; ours, as GNOCCHI's code is not public): counts are smoothed over time with a Gaussian
of `smooth_bins`, then Anscombe-transformed, 2·sqrt(x + 3/8), then standardised per unit with the
training trials' mean and s.d. Why:
- a diffusion model adds Gaussian noise of unit scale, so its data should be continuous and of similar
  scale in every channel; raw counts are integers whose variance grows with the rate;
- the Anscombe transform makes Poisson variance nearly constant (≈ 1) whatever the rate, so quiet and
  busy units weigh alike in the ε-prediction loss; smoothing first takes out most of the integer noise
  that a code of a few dimensions cannot explain anyway (LDNS, README §12, diffuses a smooth latent);
- each step has an exact algebraic inverse, so a generated signal is read back as expected counts per
  bin (`to_rates`), the rates the benchmark's metrics take (tested: the inverse returns the smoothed counts).

Unobserved entries (NaN) are smoothed around: the kernel is renormalised over the observed bins, and an
entry with no observed bin within reach is given the unit's mean (0 after standardisation).
"""

import math

import torch
import torch.nn.functional as F

ANSCOMBE_SHIFT = 3.0 / 8.0
KERNEL_WIDTH_SDS = 3  # the Gaussian is cut at 3 s.d. on each side
MIN_UNIT_SD = 1e-3  # a silent unit's s.d. of 0 would divide by 0


def gaussian_smooth(counts, sigma_bins):
    """counts trials × bins × units (NaN = unobserved) -> smoothed, NaN where nothing observed is in reach."""
    if sigma_bins <= 0:
        return counts
    half = max(1, math.ceil(KERNEL_WIDTH_SDS * sigma_bins))
    offsets = torch.arange(-half, half + 1, dtype=counts.dtype, device=counts.device)
    kernel = torch.exp(-0.5 * (offsets / sigma_bins) ** 2).view(1, 1, -1)
    observed = ~torch.isnan(counts)
    n_trials, n_bins, n_units = counts.shape

    def convolve(values):  # over time, every (trial, unit) row alike
        rows = values.permute(0, 2, 1).reshape(-1, 1, n_bins)
        return F.conv1d(rows, kernel, padding=half).reshape(n_trials, n_units, n_bins).permute(0, 2, 1)

    weight = convolve(observed.to(counts.dtype))
    total = convolve(torch.where(observed, counts, 0.0))
    return torch.where(weight > 1e-6, total / weight.clamp_min(1e-6), torch.nan)


def anscombe(values):
    return 2.0 * torch.sqrt(values.clamp_min(0.0) + ANSCOMBE_SHIFT)


def inverse_anscombe(signal):
    """The algebraic inverse of `anscombe`, floored at 0 (a sampled signal may fall below 2·sqrt(3/8))."""
    return ((signal / 2.0) ** 2 - ANSCOMBE_SHIFT).clamp_min(0.0)


def unit_statistics(counts, sigma_bins):
    """(mean, s.d.) per unit of the Anscombe-transformed smoothed `counts` (trials × bins × units), over
    every observed trial and bin: the standardisation of `to_signal`."""
    transformed = anscombe(gaussian_smooth(counts, sigma_bins)).flatten(0, 1)
    observed = ~torch.isnan(transformed)
    n = observed.sum(0).clamp_min(1)
    mean = torch.where(observed, transformed, 0.0).sum(0) / n
    var = torch.where(observed, (transformed - mean) ** 2, 0.0).sum(0) / n
    return mean, var.sqrt().clamp_min(MIN_UNIT_SD)


def to_signal(counts, sigma_bins, mean, sd):
    """counts trials × bins × units -> the standardised signal, 0 where no observed bin is in reach."""
    signal = (anscombe(gaussian_smooth(counts, sigma_bins)) - mean) / sd
    return torch.nan_to_num(signal, nan=0.0)


def to_rates(signal, mean, sd):
    """The inverse of `to_signal` after smoothing: expected counts per bin (≥ 0)."""
    return inverse_anscombe(signal * sd + mean)
