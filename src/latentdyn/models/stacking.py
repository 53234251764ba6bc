"""K models of one architecture computed as one: every tensor gains a leading member dimension.

`stack_modules(models, generators)` rebuilds the module tree of `models[0]` with each leaf that holds
parameters replaced by a stacked leaf that holds the K members' parameters stacked on a new first
dimension, under the same names (`encoder.gru.weight_hh_l0` is K × 3H × H), and computes all members at
once with batched matmuls. The containers above the leaves (a kind's model class, its encoder, its
dynamics) are shallow copies of member 0's, so a kind's own forward and step code runs unchanged on
member-first tensors, provided it is written for leading dimensions (e.g. `torch.stack(..., dim=-2)`,
`x.shape[:-1]`).

Why batched matmuls and not `torch.func.vmap` over `functional_call`: vmap has no batching rule for
`nn.GRU` (torch 2.13: "Batching rule not implemented for aten::gru.input"), and a stacked model must
draw each member's dropout masks from that member's own generator (`generators[m]`), in the order its
lone run draws them, for stacked training to equal training each member alone; vmap's
`randomness="different"` draws from one generator for all.

The per-step work of these models is a few small kernels per bin (reference README §13: launch-bound);
a stack does the same number of kernels for K members.
"""

import copy

import torch
from torch import nn

from latentdyn.models.components import BernoulliDropout, dropout_mask


def stack_modules(models, generators):
    """One module computing all of `models` (one architecture, parameters stacked member-first).

    `generators[m]`: where member m's random draws (dropout) come from. A leaf with parameters of a
    type without a stacked counterpart, or members whose sizes differ, is a TypeError naming it.
    """
    first = models[0]
    for lone_type, stacked_type in STACKED_LEAVES.items():
        if type(first) is lone_type:
            return stacked_type(models, generators)
    if any(type(model) is not type(first) for model in models):
        raise TypeError(f"cannot stack modules of different types: {sorted({type(m).__name__ for m in models})}")
    if first._parameters or first._buffers:
        raise TypeError(f"cannot stack {type(first).__name__}: it holds parameters and has no stacked counterpart")
    stacked = copy.copy(first)  # the same class and settings (sizes, n_steps, dt, ...)
    stacked._parameters, stacked._buffers = {}, {}
    stacked._modules = {name: stack_modules([model._modules[name] for model in models], generators)
                        for name in first._modules}
    return stacked


def member_parameters(stacked, model):
    """Pairs (stacked parameter, the lone model's parameter of the same name), checking names and shapes."""
    lone = dict(model.named_parameters())
    pairs = []
    for name, parameter in stacked.named_parameters():
        if name not in lone or parameter.shape[1:] != lone[name].shape:
            raise TypeError(f"stacked parameter {name} {tuple(parameter.shape)} matches no parameter of {type(model).__name__}")
        pairs.append((parameter, lone[name]))
    if len(pairs) != len(lone):
        raise TypeError(f"{type(model).__name__} has parameters its stack lacks: {sorted(set(lone) - set(dict(stacked.named_parameters())))}")
    return pairs


def _stacked_parameter(models, name):
    tensors = [getattr(model, name).detach() for model in models]
    if any(t.shape != tensors[0].shape for t in tensors):
        raise TypeError(f"cannot stack {type(models[0]).__name__}.{name}: shapes differ {sorted({tuple(t.shape) for t in tensors})}")
    return nn.Parameter(torch.stack(tensors))


def _copy_parameters(target, models, names):
    for name in names:
        setattr(target, name, _stacked_parameter(models, name))


def _linear(x, weight, bias):
    """x @ weightᵀ + bias per member: x (K, …, in), weight (K, out, in), bias (K, out)."""
    members, *middle, size = x.shape
    out = torch.baddbmm(bias.unsqueeze(1), x.reshape(members, -1, size), weight.transpose(1, 2))
    return out.view(members, *middle, weight.shape[1])


class StackedLinear(nn.Module):
    def __init__(self, models, generators):
        super().__init__()
        _copy_parameters(self, models, ["weight", "bias"])

    def forward(self, x):
        return _linear(x, self.weight, self.bias)


def _gru_update(input_gates, hidden_gates, hidden):
    """The GRU cell's state update, in ATen's CPU order of operations (RNN.cpp GRUCell), so that a
    member's state is its lone run's within float rounding."""
    i_r, i_z, i_n = input_gates.chunk(3, -1)
    h_r, h_z, h_n = hidden_gates.chunk(3, -1)
    reset = (h_r + i_r).sigmoid()
    update = (h_z + i_z).sigmoid()
    new = (i_n + h_n * reset).tanh()
    return (hidden - new) * update + new


class StackedGRUCell(nn.Module):
    def __init__(self, models, generators):
        super().__init__()
        _copy_parameters(self, models, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])

    def forward(self, inputs, hidden):
        input_gates = _linear(inputs, self.weight_ih, self.bias_ih)
        return _gru_update(input_gates, _linear(hidden, self.weight_hh, self.bias_hh), hidden)


class StackedGRU(nn.Module):
    """A one-layer, batch-first `nn.GRU` (uni- or bidirectional) per member; both directions advance
    in one batched matmul per bin. Returns (None, final states): the final states as `nn.GRU` gives
    them, directions × members × trials × hidden; the per-bin outputs are not kept."""

    def __init__(self, models, generators):
        super().__init__()
        first = models[0]
        if first.num_layers != 1 or not first.batch_first or not first.bias or first.proj_size:
            raise TypeError("cannot stack nn.GRU other than one layer, batch_first, with biases")
        if any((m.input_size, m.hidden_size, m.bidirectional) != (first.input_size, first.hidden_size, first.bidirectional) for m in models):
            raise TypeError("cannot stack nn.GRU of different sizes")
        self.suffixes = ["", "_reverse"] if first.bidirectional else [""]
        _copy_parameters(self, models, [f"{kind}_l0{suffix}" for suffix in self.suffixes
                                        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])

    def forward(self, x):
        members = x.shape[0]
        input_gates = []
        for direction, suffix in enumerate(self.suffixes):
            gates = _linear(x, getattr(self, f"weight_ih_l0{suffix}"), getattr(self, f"bias_ih_l0{suffix}"))
            input_gates.append(gates.flip(2) if direction else gates)
        # (directions · K) × trials × 3H per bin; unbind, not indexing: the backward of an index
        # zero-fills the whole tensor at every bin
        input_gates = torch.cat(input_gates).unbind(2)
        weight_hh = torch.cat([getattr(self, f"weight_hh_l0{suffix}") for suffix in self.suffixes])
        bias_hh = torch.cat([getattr(self, f"bias_hh_l0{suffix}") for suffix in self.suffixes])
        hidden = x.new_zeros(*input_gates[0].shape[:2], weight_hh.shape[-1])
        for gates in input_gates:
            hidden = _gru_update(gates, _linear(hidden, weight_hh, bias_hh), hidden)
        return None, hidden.view(len(self.suffixes), members, *hidden.shape[1:])


class StackedDropout(nn.Module):
    """`BernoulliDropout` with member m's mask drawn from `generators[m]`: the draws of its lone run."""

    def __init__(self, models, generators):
        super().__init__()
        self.p = models[0].p
        self.generators = generators

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        masks = [dropout_mask(x.shape[1:], self.p, x.device, generator) for generator in self.generators]
        return x * torch.stack(masks)


STACKED_LEAVES = {
    nn.Linear: StackedLinear,
    nn.GRUCell: StackedGRUCell,
    nn.GRU: StackedGRU,
    BernoulliDropout: StackedDropout,
}
