"""LFADS's feed-forward maps, initialised as lfads-torch does (README §7)."""

import torch
from torch import nn
from torch.nn import functional as F


def fan_in_linear(in_features, out_features, bias=True):
    """A linear map with weights ~ N(0, 1/in_features) and zero bias."""
    linear = nn.Linear(in_features, out_features, bias=bias)
    nn.init.normal_(linear.weight, std=in_features**-0.5)
    if bias:
        nn.init.zeros_(linear.bias)
    return linear


class RowNormalizedLinear(nn.Module):
    """Generator state -> factors: each factor's weight row has unit norm, no bias, so the factors' scale
    is set by the generator state alone (it cannot be traded against the readout). The decoder takes
    `normalized_weight()` once per sequence rather than renormalising in every bin."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = fan_in_linear(in_features, out_features, bias=False).weight

    def normalized_weight(self):
        return F.normalize(self.weight, dim=1)


def dropout_mask(dropout, shape, like, fast):
    """A mask that multiplies like `dropout` (kept entries 1/(1 − p), the rest 0) of `shape`, or None
    where dropout is the identity (eval mode, p = 0).

    `fast` (the fast path) on a CPU draws it as uniform ≥ p: ATen's CPU bernoulli (a scalar loop where
    MKL's is not used, e.g. on AMD CPUs) is about three times slower than its uniform, and LFADS draws
    millions of mask entries per step. The same distribution, not the same draws as nn.Dropout (the
    eager path keeps those; on a GPU both paths use nn.Dropout).
    """
    if not (dropout.training and dropout.p > 0):
        return None
    if fast and like.device.type == "cpu":
        return like.new_empty(shape).uniform_().ge_(dropout.p).mul_(1 / (1 - dropout.p))
    return dropout(like.new_ones(shape))


def apply_dropout(dropout, values, fast):
    """`dropout(values)`, its mask drawn by `dropout_mask` on the fast path."""
    if not fast or values.device.type != "cpu":
        return dropout(values)
    if not (dropout.training and dropout.p > 0):
        return values
    return values * torch.empty_like(values).uniform_().ge_(dropout.p).mul_(1 / (1 - dropout.p))  # values' layout
