"""LFADS's recurrent pieces: the TF1-style clipped GRU cell, a layer that unrolls it, a bidirectional encoder.

lfads-torch (README §7) resets before the recurrent matmul, n = tanh(W_n x + b_n + U_n (r ⊙ h)), and
clamps the new state to ±cell_clip, so cuDNN's GRU (reset after the matmul, no clip) cannot stand in.
§13: lfads-torch projects the input inside every per-bin Python step; here a layer projects the
inputs of all bins in one matmul before its loop, leaving two recurrent matmuls per step, each fused
with its addition (U_zr h for both gates at once, then U_n (r ⊙ h), which needs r first). `eager=True`
keeps lfads-torch's per-step projection: the speed benchmark's reference, and what the tests hold the
fast path to.
"""

import torch
from torch import nn
from torch.nn import functional as F


class ClippedGRUCell(nn.Module):
    """z = σ(W_z x + b_z + U_z h), r = σ(W_r x + b_r + U_r h), n = tanh(W_n x + b_n + U_n(r ⊙ h)),
    h' = clamp(z ⊙ h + (1 − z) ⊙ n, ±clip).

    Input-side rows are stacked z, r, n. The recurrent weights are two parameters, U_zr (both gates,
    one matmul) and U_n, so a step never slices a parameter (a slice's backward fills a whole zero
    gradient every step). Weights ~ N(0, 1/fan_in), biases 1 (z, r) and 0 (n), no recurrent bias
    (lfads-torch's initialisation, README §7).
    """

    def __init__(self, input_size, hidden_size, clip):
        super().__init__()
        self.input_size, self.hidden_size, self.clip = input_size, hidden_size, clip
        self.weight_ih = nn.Parameter(torch.randn(3 * hidden_size, input_size) / max(input_size, 1) ** 0.5)
        self.bias_ih = nn.Parameter(torch.cat([torch.ones(2 * hidden_size), torch.zeros(hidden_size)]))
        self.weight_hh_zr = nn.Parameter(torch.randn(2 * hidden_size, hidden_size) / hidden_size**0.5)
        self.weight_hh_n = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size**0.5)

    def recurrent_weights(self):
        return [self.weight_hh_zr, self.weight_hh_n]

    def project_input(self, inputs):
        """The gates' input side W x + b, for inputs of any leading shape (all bins at once)."""
        return F.linear(inputs, self.weight_ih, self.bias_ih)

    def advance(self, projected_input, hidden):
        """One step from the projected input."""
        zr_in, n_in = projected_input.split([2 * self.hidden_size, self.hidden_size], dim=-1)
        z, r = torch.sigmoid(torch.addmm(zr_in, hidden, self.weight_hh_zr.T)).chunk(2, dim=-1)
        n = torch.tanh(torch.addmm(n_in, r * hidden, self.weight_hh_n.T))
        return torch.lerp(n, hidden, z).clamp(-self.clip, self.clip)  # z ⊙ h + (1 − z) ⊙ n

    def forward(self, inputs, hidden):
        return self.advance(self.project_input(inputs), hidden)


class ClippedGRU(nn.Module):
    """A clipped GRU cell unrolled over the bins of (trials × bins × inputs); returns every state."""

    def __init__(self, input_size, hidden_size, clip, eager=False):
        super().__init__()
        self.cell = ClippedGRUCell(input_size, hidden_size, clip)
        self.eager = eager

    def forward(self, inputs, initial_state):
        hidden, states = initial_state, []
        if self.eager:
            for step_input in inputs.unbind(1):
                hidden = self.cell(step_input, hidden)
                states.append(hidden)
        else:
            projected_bins = self.cell.project_input(inputs.transpose(0, 1)).unbind(0)  # time-major: contiguous
            for projected in projected_bins:
                hidden = self.cell.advance(projected, hidden)
                states.append(hidden)
        return torch.stack(states, dim=1)


class BidirectionalClippedGRU(nn.Module):
    """Forward and backward clipped GRUs from learned initial states.

    Returns (outputs, final): outputs are trials × bins × 2·hidden (forward then backward state at each
    bin), final the concatenated last forward and last backward (i.e. first-bin) states.
    """

    def __init__(self, input_size, hidden_size, clip, eager=False):
        super().__init__()
        self.forward_gru = ClippedGRU(input_size, hidden_size, clip, eager)
        self.backward_gru = ClippedGRU(input_size, hidden_size, clip, eager)
        self.initial_states = nn.Parameter(torch.zeros(2, hidden_size))

    def forward(self, inputs):
        n_trials = inputs.shape[0]
        forward_states = self.forward_gru(inputs, self.initial_states[0].expand(n_trials, -1))
        backward_states = self.backward_gru(inputs.flip(1), self.initial_states[1].expand(n_trials, -1)).flip(1)
        final = torch.cat([forward_states[:, -1], backward_states[:, 0]], dim=-1)
        return torch.cat([forward_states, backward_states], dim=-1), final
