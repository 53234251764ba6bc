"""LFADS's priors and their KL terms (lfads-torch, README §7).

Posteriors are diagonal normals given by (mean, std). Both KLs are summed over dimensions (and
bins) and averaged over trials.
"""

import math

import torch
from torch import nn


def normal_log_density(x, mean, variance):
    return -0.5 * (math.log(2 * math.pi) + torch.log(variance) + (x - mean) ** 2 / variance)


class NormalPrior(nn.Module):
    """Initial-condition prior N(mean, variance): learnable mean (init 0), fixed variance (§7: 0.1)."""

    def __init__(self, size, variance):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(size))
        self.register_buffer("variance", torch.full((size,), float(variance)))

    def kl(self, post_mean, post_std):
        """Analytic KL(N(post_mean, post_std²) ‖ prior), summed over dimensions, averaged over trials."""
        post_var = post_std**2
        per_dim = 0.5 * (torch.log(self.variance / post_var) + (post_var + (post_mean - self.mean) ** 2) / self.variance - 1)
        return per_dim.sum(-1).mean()


class AutoregressivePrior(nn.Module):
    """AR(1) prior of each inferred-input dimension: u_t = α u_{t−1} + ε, ε ~ N(0, nvar), α = exp(−1/τ).

    log τ and log nvar are learned (§7 inits: τ 10, nvar 0.1). The first bin is drawn from the
    process's stationary distribution, variance nvar / (1 − α²).
    """

    def __init__(self, size, tau, noise_variance):
        super().__init__()
        self.log_tau = nn.Parameter(torch.full((size,), math.log(tau)))
        self.log_noise_variance = nn.Parameter(torch.full((size,), math.log(noise_variance)))

    @property
    def alpha(self):
        return torch.exp(-1.0 / torch.exp(self.log_tau))

    def stationary_variance(self):
        return torch.exp(self.log_noise_variance) / (1 - self.alpha**2)

    def log_prob(self, inputs):
        """log p(u) of trials × bins × dims, summed over bins and dims: one value per trial."""
        first = normal_log_density(inputs[:, :1], 0.0, self.stationary_variance())
        rest = normal_log_density(inputs[:, 1:], self.alpha * inputs[:, :-1], torch.exp(self.log_noise_variance))
        return first.sum((1, 2)) + rest.sum((1, 2))

    def kl(self, post_mean, post_std):
        """One-sample estimate of KL(q ‖ p) = E_q[log q − log p], averaged over trials (lfads-torch)."""
        sample = post_mean + post_std * torch.randn_like(post_mean)
        log_q = normal_log_density(sample, post_mean, post_std**2).sum((1, 2))
        return (log_q - self.log_prob(sample)).mean()
