"""NDT's transformer encoder: pre-norm layers with local attention over bins and T-Fixup initialisation.

Attention runs through `torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
on the device. Local attention is an additive mask (0 where a bin may attend, −inf elsewhere) built once
for the model's fixed sequence length; with both contexts unlimited there is no mask at all, which lets
the fastest (flash) kernel run.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def local_attention_band(n_bins, backward, forward):
    """n_bins × n_bins boolean, [query, key] True where bin `query` may attend to bin `key`:
    query − backward ≤ key ≤ query + forward (None = no limit on that side)."""
    offset = torch.arange(n_bins).unsqueeze(0) - torch.arange(n_bins).unsqueeze(1)  # key − query
    allowed = torch.ones(n_bins, n_bins, dtype=torch.bool)
    if backward is not None:
        allowed &= offset >= -backward
    if forward is not None:
        allowed &= offset <= forward
    return allowed


def additive_attention_mask(n_bins, backward, forward):
    """The band as the additive mask attention takes, or None when attention is unrestricted."""
    if backward is None and forward is None:
        return None
    band = local_attention_band(n_bins, backward, forward)
    return torch.zeros(n_bins, n_bins).masked_fill(~band, -math.inf)


def sinusoidal_positions(n_bins, width):
    """The fixed sine/cosine position code of "Attention is all you need" (an odd width drops the last cosine)."""
    position = torch.arange(n_bins, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width + 1, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    code = torch.stack([torch.sin(position * frequency), torch.cos(position * frequency)], dim=-1)
    return code.flatten(1)[:, :width]


class SelfAttention(nn.Module):
    """Multi-head self-attention with one packed q/k/v projection and the fused attention kernel."""

    def __init__(self, width, heads, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, mask):
        trials, bins, width = x.shape
        q, k, v = self.qkv(x).view(trials, bins, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if mask is None else mask.to(q.dtype)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(attended.transpose(1, 2).reshape(trials, bins, width))


class EncoderLayer(nn.Module):
    """Pre-norm layer (Nguyen & Salazar 2019, as NDT uses): x + attention(norm(x)), then x + ff(norm(x))."""

    def __init__(self, width, heads, ff_dim, dropout):
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads, dropout)
        self.ff_norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, width))
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        x = x + self.residual_dropout(self.attention(self.attention_norm(x), mask))
        return x + self.residual_dropout(self.ff(self.ff_norm(x)))


class Encoder(nn.Module):
    """`layers` encoder layers over a sequence of `n_bins` and a final layer norm."""

    def __init__(self, width, n_bins, layers, heads, ff_dim, dropout, context_backward, context_forward):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(width, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.register_buffer(
            "mask", additive_attention_mask(n_bins, context_backward, context_forward), persistent=False
        )
        self._t_fixup()

    def forward(self, x):
        for layer in self.layers:
            x = layer(x, self.mask)
        return self.norm(x)

    def _t_fixup(self):
        """T-Fixup for an N-layer encoder (Huang, Perez, Ba & Volkovs 2020, "Improving Transformer
        Optimization Through Better Initialization", ICML): Xavier-uniform weights, then the value and
        output projections of attention and both feed-forward weights scaled by 0.67·N^(−1/4), which
        bounds the size of each layer's update so that training is stable without a long warm-up.
        Each of the packed q, k, v matrices gets Xavier for its own width × width shape (NDT's √2 on
        the value projection corrects torch's packed initialisation to the same). NDT keeps the layer
        norms, and so does this."""
        scale = 0.67 * len(self.layers) ** -0.25
        with torch.no_grad():
            for layer in self.layers:
                attention, ff = layer.attention, layer.ff
                for block in attention.qkv.weight.chunk(3):
                    nn.init.xavier_uniform_(block)
                for linear in (attention.out, ff[0], ff[3]):
                    nn.init.xavier_uniform_(linear.weight)
                for linear in (attention.qkv, attention.out, ff[0], ff[3]):
                    linear.bias.zero_()
                value = attention.qkv.weight.chunk(3)[2]
                for weight in (value, attention.out.weight, ff[0].weight, ff[3].weight):
                    weight.mul_(scale)
