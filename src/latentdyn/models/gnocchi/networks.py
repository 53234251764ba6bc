"""GNOCCHI's two networks: the trial encoder (signal -> code) and the code-conditioned denoiser.

The denoiser is a 1-D U-Net over time with units as channels, written here because diffusers'
UNet1DModel takes no conditioning input (README §12). Each residual block is conditioned as in
InfoDiffusion (Wang et al. 2023): after its group norm, a scale-and-shift from the diffusion step's
embedding, then a second scale-and-shift from the code, so the code can modulate every level.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

GROUPS = 8  # group-norm groups (channels are multiples of it)


class TrialEncoder(nn.Module):
    """A bidirectional GRU over a trial's held-in signal; its two final states -> a deterministic code."""

    def __init__(self, n_input, hidden, code_dim):
        super().__init__()
        self.gru = nn.GRU(n_input, hidden, batch_first=True, bidirectional=True)
        self.to_code = nn.Linear(2 * hidden, code_dim)

    def forward(self, signal):
        """signal trials × bins × units -> code trials × code_dim."""
        _, final = self.gru(signal)
        return self.to_code(torch.cat([final[0], final[1]], dim=-1))


def step_embedding(steps, size):
    """Sinusoidal embedding of integer diffusion steps (trials) -> trials × size, as transformers' positions."""
    half = size // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=steps.device) / max(half - 1, 1))
    angles = steps.float().unsqueeze(-1) * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConditionedBlock(nn.Module):
    """Residual block: norm, SiLU, conv; norm, step scale-shift, code scale-shift, SiLU, dropout, conv."""

    def __init__(self, c_in, c_out, embed_dim, code_dim, dropout):
        super().__init__()
        self.norm_in = nn.GroupNorm(GROUPS, c_in)
        self.conv_in = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm_out = nn.GroupNorm(GROUPS, c_out)
        self.step_shift = nn.Linear(embed_dim, 2 * c_out)
        self.code_shift = nn.Linear(code_dim, 2 * c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = nn.Conv1d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # each block starts as the identity (its skip)
        nn.init.zeros_(self.conv_out.bias)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)

    def forward(self, x, step_embedded, code):
        h = self.conv_in(F.silu(self.norm_in(x)))
        h = self.norm_out(h)
        scale, shift = self.step_shift(step_embedded).unsqueeze(-1).chunk(2, dim=1)
        h = h * (1 + scale) + shift
        scale, shift = self.code_shift(code).unsqueeze(-1).chunk(2, dim=1)
        h = h * (1 + scale) + shift
        h = self.conv_out(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Denoiser(nn.Module):
    """ε̂(x_t, t, code): a U-Net over time. `channels` at the first level, doubled at each of `levels - 1`
    halvings of the time axis; the input is padded to a multiple of 2**(levels - 1) bins and cut back.

    A 1×1 convolution also takes the noisy input straight to the output: the first level may have fewer
    channels than there are units, and without this path the net could pass on only that many of the
    noise's dimensions (a 32-channel net over 60 units stuck at ε MSE 0.5 at t = 990, where ε ≈ x_t)."""

    def __init__(self, n_units, channels, levels, code_dim, dropout):
        super().__init__()
        if channels % GROUPS:
            raise ValueError(f"channels must be a multiple of {GROUPS}")
        self.levels = levels
        self.channels = channels
        embed_dim = 4 * channels
        self.embed_step = nn.Sequential(nn.Linear(channels, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        widths = [channels * 2**level for level in range(levels)]
        self.conv_in = nn.Conv1d(n_units, channels, 3, padding=1)

        def block(c_in, c_out):
            return ConditionedBlock(c_in, c_out, embed_dim, code_dim, dropout)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = channels
        for level, width in enumerate(widths):
            self.down.append(block(previous, width))
            previous = width
            if level < levels - 1:
                self.downsample.append(nn.Conv1d(width, width, 3, stride=2, padding=1))
        self.middle = nn.ModuleList([block(previous, previous), block(previous, previous)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(levels)):
            self.up.append(block(previous + widths[level], widths[level]))
            previous = widths[level]
            if level > 0:
                self.upsample.append(nn.Conv1d(previous, widths[level - 1], 3, padding=1))
                previous = widths[level - 1]
        self.norm_out = nn.GroupNorm(GROUPS, channels)
        self.conv_out = nn.Conv1d(channels, n_units, 3, padding=1)
        self.input_to_output = nn.Conv1d(n_units, n_units, 1)

    def forward(self, noisy, steps, code):
        """noisy trials × units × bins, steps trials (int), code trials × code_dim -> ε̂ like `noisy`."""
        n_bins = noisy.shape[-1]
        multiple = 2 ** (self.levels - 1)
        h = F.pad(noisy, (0, -n_bins % multiple))
        embedded = self.embed_step(step_embedding(steps, self.channels))
        h = self.conv_in(h)
        skips = []
        for level, block in enumerate(self.down):
            h = block(h, embedded, code)
            skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
        for block in self.middle:
            h = block(h, embedded, code)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), embedded, code)
            if i < self.levels - 1:
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))[..., :n_bins] + self.input_to_output(noisy)
