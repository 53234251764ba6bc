"""LFADS's feed-forward maps, initialised as lfads-torch does (README §7)."""

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
