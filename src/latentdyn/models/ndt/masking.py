"""NDT's masked modelling: which held-in bins are hidden from the model, and what it reads there instead.

After neural-data-transformers (src/mask.py, "timestep" mode): whole bins are masked, each trial with
probability `mask_ratio / span` per span start and spans of `span` bins, so about `mask_ratio` of the
bins are masked whatever the span; the span is 1 until `span_ramp_start`, after which a growing share
of trials (all by `span_ramp_end`) draws it uniformly from 1..`max_span` (there one span per batch;
here one per trial). Each entry of a masked bin is zeroed with probability `mask_token_ratio`, else
given a random count with probability `random_token_ratio`, else left as it was: the model has to
infer every masked entry from its context, and cannot tell a kept or random entry from a true one.
Random counts are drawn as NDT draws them (`torch.randint(batch.max())` after zeroing): uniform over
0..m − 1, m the batch's largest count after zeroing, so never m itself (issue 23).

Everything is torch arithmetic on the batch's device with torch's RNG, and the epoch may be a device
tensor: a training step stays CUDA-graph capturable.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class MaskingSettings:
    mask_ratio: float
    mask_token_ratio: float
    random_token_ratio: float
    max_span: int
    span_ramp_start: int
    span_ramp_end: int

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params[name] for name in cls.__dataclass_fields__})


class BinMasking(nn.Module):
    """(counts, epoch) -> (corrupted counts, masked bins): counts trials × bins × units, finite."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def forward(self, counts, epoch):
        masked_bins = self.masked_bins(counts.shape[0], counts.shape[1], epoch, counts.device)
        return self.corrupt(counts, masked_bins), masked_bins

    def span_probability(self, epoch):
        """Share of trials drawing a span longer than 1 at `epoch` (a tensor): 0 before the ramp, 1 after."""
        start, end = self.settings.span_ramp_start, self.settings.span_ramp_end
        if end <= start:
            return (epoch >= start).float()
        return ((epoch - start) / (end - start)).clamp(0.0, 1.0)

    def masked_bins(self, n_trials, n_bins, epoch, device):
        """trials × bins boolean: bins whose entries the model must reconstruct."""
        s = self.settings
        spans = torch.ones(n_trials, 1, device=device)
        if s.max_span > 1:
            drawn = torch.randint(1, s.max_span + 1, (n_trials, 1), device=device).float()
            long_spans = torch.rand(n_trials, 1, device=device) < self.span_probability(epoch)
            spans = torch.where(long_spans, drawn, spans)
        starts = torch.rand(n_trials, n_bins, device=device) < s.mask_ratio / spans
        masked = starts
        for offset in range(1, min(s.max_span, n_bins)):  # a span covers its start and the next span − 1 bins
            masked = masked | (F.pad(starts[:, :-offset], (offset, 0)) & (spans > offset))
        return masked

    def corrupt(self, counts, masked_bins):
        """Zero / randomise / keep each entry of the masked bins; random counts are uniform over
        0..m − 1, m the largest count left after zeroing (NDT's draw)."""
        s = self.settings
        draw = torch.rand_like(counts)
        masked = masked_bins.unsqueeze(-1)
        zeroed = masked & (draw < s.mask_token_ratio)
        randomised = masked & ~zeroed & (draw < s.mask_token_ratio + (1 - s.mask_token_ratio) * s.random_token_ratio)
        zeroed_counts = torch.where(zeroed, 0.0, counts)
        random_counts = torch.floor(torch.rand_like(counts) * zeroed_counts.amax())
        return torch.where(randomised, random_counts, zeroed_counts)
