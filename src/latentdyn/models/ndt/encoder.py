"""NDT's transformer encoder: pre-norm layers with local attention over bins, and its initialisation.

Two initialisations (`init`), both after T-Fixup (Huang, Perez, Ba & Volkovs 2020, "Improving Transformer
Optimization Through Better Initialization", ICML), which scales the weights of each layer's value and
output projections and feed-forward maps by 0.67·N^(−1/4) for N layers (NDT keeps the layer norms, as
both do here):

- `original`: what neural-data-transformers' code (src/model.py) actually starts from. It builds one
  `nn.TransformerEncoderLayer`, whose modules torch initialises (MultiheadAttention: the packed 3d × d
  q/k/v matrix Xavier-uniform as one matrix, its bias and the output bias zero; `nn.Linear`: weights
  and biases uniform(±1/√fan_in)), then scales the output-projection and feed-forward weights, not
  their biases, by 0.67·N^(−1/4). Its scaling of `self_attn.v_proj.weight` (×√2) never runs, as packed
  attention has no such parameter, so the value projection stays unscaled. `nn.TransformerEncoder`
  then deep-copies that layer N times: every layer starts identical.
- `t_fixup`: the scheme as the paper and NDT's code comments state it: every layer drawn on its own,
  Xavier-uniform for each weight matrix (q, k and v each as a d × d matrix), zero biases, and the
  value, output and feed-forward weights scaled by 0.67·N^(−1/4).

The two start at different scales (width d, feed-forward f: `t_fixup`'s q and k spread √2 times
`original`'s, v 0.67·N^(−1/4)·√2, the attention output √3, the feed-forward weights √(6d/(d + f)) and
√(6f/(d + f)) times). `original` is the default because it is what NDT's published numbers were trained
from. docs/validation.md records this model trained beside NDT's own code at matched settings: the
training steps agree to float rounding from the same weights, and each code's scores per seed.

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
    """`layers` encoder layers over a sequence of `n_bins` and a final layer norm, initialised by `init`
    (`original` or `t_fixup`, see the module docstring)."""

    def __init__(self, width, n_bins, layers, heads, ff_dim, dropout, context_backward, context_forward, init):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(width, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.register_buffer(
            "mask", additive_attention_mask(n_bins, context_backward, context_forward), persistent=False
        )
        with torch.no_grad():
            INITIALISATIONS[init](self.layers, 0.67 * layers**-0.25)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x, self.mask)
        return self.norm(x)


def original_init(layers, scale):
    """neural-data-transformers' effective initialisation: torch's defaults for one layer, its output
    and feed-forward weights times `scale`, copied into every layer."""
    first = layers[0]
    attention, ff = first.attention, first.ff
    nn.init.xavier_uniform_(attention.qkv.weight)  # one 3d × d matrix: bound √(6 / 4d)
    attention.qkv.bias.zero_()
    for linear in (attention.out, ff[0], ff[3]):
        linear.reset_parameters()  # weight and bias uniform(±1/√fan_in)
        linear.weight.mul_(scale)
    attention.out.bias.zero_()  # MultiheadAttention zeroes its output bias
    for layer in layers[1:]:
        layer.load_state_dict(first.state_dict())


def t_fixup_init(layers, scale):
    """T-Fixup as stated: per layer, Xavier-uniform for each d × d block of q, k, v and for the output
    and feed-forward weights, zero biases, the value, output and feed-forward weights times `scale`."""
    for layer in layers:
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


INITIALISATIONS = {"original": original_init, "t_fixup": t_fixup_init}
