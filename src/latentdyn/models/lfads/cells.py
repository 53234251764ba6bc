"""LFADS's recurrent pieces: the TF1-style clipped GRU cell, a layer that unrolls it, a bidirectional encoder.

lfads-torch (README §7) resets before the recurrent matmul, n = tanh(W_n x + b_n + U_n (r ⊙ h)), and
clamps the new state to ±cell_clip, so cuDNN's GRU (reset after the matmul, no clip) cannot stand in.

Two ways to unroll, same results within float rounding (tests/test_lfads.py holds them to it):
- `eager=True`, lfads-torch's way (§13): every bin is a Python-level step of autograd-tracked ops that
  projects its own input. The speed benchmark's reference (benchmarks/lfads_speed.py).
- the fast path: `unroll_clipped_grus` runs the whole recurrence as one autograd node with a
  hand-written backward (`_Unroll`, `_ClippedGRUSequence`). Autograd would record some ten nodes per
  bin, allocate each one's output and gradient, and compute the weights' gradients with small
  matmuls (and accumulations) per bin. Here every per-bin result goes into preallocated buffers, the
  backward pass walks the bins once in reverse (two recurrent matmuls and a few in-place elementwise
  ops per bin), and each weight's gradient is one matmul over all bins and trials. Cells of the same
  size (an encoder's two directions, and both encoders when their sizes match) run as the groups of
  one batched matmul per bin.
"""

import functools

import torch
from torch import nn
from torch.nn import functional as F


def at_full_precision(function):
    """`function` (a fused autograd Function's `apply`) run with autocast off and its floating-point
    tensors in fp32, whatever the caller's autocast; the Function's backward is marked `autocast_off`.

    The fused recurrences write every bin into preallocated fp32 buffers with `out=` matmuls, which
    autocast would hand bf16/fp16 operands ("Input dtypes must be the same"). Their per-bin matmuls
    are small (trials × a few hundred units) and latency-bound, where half precision saves little, and
    a clipped state carried through hundreds of bins would accumulate half precision's rounding; so
    the recurrence, its state and its accumulation stay fp32, and under autocast only the layers
    around it (encoders' read-outs, the rates' read-out) run in half precision (issue 20)."""
    function = autocast_off(function)

    @functools.wraps(function)
    def full_precision(*args):
        return function(*(arg.float() if torch.is_tensor(arg) and arg.is_floating_point() else arg for arg in args))

    return full_precision


def autocast_off(function):
    """`function` run with autocast off on the device of its first tensor argument: a fused Function's
    backward, which otherwise runs under the autocast of the `backward()` call."""

    @functools.wraps(function)
    def without_autocast(*args):
        device_type = next(arg.device.type for arg in args if torch.is_tensor(arg))
        with torch.autocast(device_type, enabled=False):
            return function(*args)

    return without_autocast


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


def stacked_recurrent_weights(cells):
    """(U_zr, U_n) of same-sized cells, stacked into groups × rows × columns for `unroll_clipped_grus`."""
    return torch.stack([cell.weight_hh_zr for cell in cells]), torch.stack([cell.weight_hh_n for cell in cells])


def unroll_clipped_grus(cells, inputs, initial_states):
    """Run G same-sized clipped GRU cells, each over its own sequence, as one fused recurrence.

    `inputs`: G × bins × trials × inputs (time-major per group); `initial_states`: G × trials × hidden.
    Returns every state, G × bins × trials × hidden.
    """
    weight_ih = torch.stack([cell.weight_ih for cell in cells])
    bias_ih = torch.stack([cell.bias_ih for cell in cells])
    return at_full_precision(_ClippedGRUSequence.apply)(
        inputs, weight_ih, bias_ih, initial_states, *stacked_recurrent_weights(cells), cells[0].clip
    )


class _Unroll:
    """G clipped GRU cells unrolled over bins, with the buffers their backward pass reads.

    Tensors are group-major: G × bins × trials × size, so a bin is a (G × trials × size) view and all
    bins of a group flatten to one (bins·trials × size) matrix for the weight gradients. Forward
    quantities are kept per bin: gates σ(·) (z then r), candidate n, r ⊙ h, the unclamped new state
    (for the clamp's gradient) and the state (into `states` when given: a caller's output buffer).
    Every per-bin result is written into these buffers, or in the backward pass into a few scratch
    tensors allocated once (`start_backward`): no allocation per bin (on a CPU, freshly allocated
    tensors of this size cost page faults). The backward pass works bin by bin on small,
    cache-resident tensors rather than on whole sequences at once, which on a CPU is memory-bound.

    On a CPU, tanh(x) is computed as 2σ(2x) − 1 (the factor 2 folded into the matmul): ATen's CPU tanh
    is several times slower than its sigmoid, and the two agree to float rounding.

    With clip ≥ 1 the clamp can act only in the first bin: from a state within ±clip, the new state is
    a convex combination (lerp, weight z ∈ [0, 1]) of it and n ∈ [−1, 1], so stays within ±clip. Only
    the initial state (a linear map, or learned) can lie outside. So the clamp and its gradient mask
    are applied in bin 0 alone, with the same results.
    """

    def __init__(self, initial_state, n_bins, clip, states=None):
        n_groups, n_trials, hidden = initial_state.shape
        self.hidden, self.clip, self.initial_state = hidden, clip, initial_state
        self.tanh_by_sigmoid = initial_state.device.type == "cpu"
        self.clamped_bins = 1 if clip >= 1 else n_bins  # bins whose clamp can act (see above)
        shape = (n_groups, n_bins, n_trials)
        self.states = initial_state.new_empty(*shape, hidden) if states is None else states
        self.gates = initial_state.new_empty(*shape, 2 * hidden)
        self.candidate = initial_state.new_empty(*shape, hidden)
        self.reset_state = initial_state.new_empty(*shape, hidden)
        self.unclamped = initial_state.new_empty(n_groups, self.clamped_bins, n_trials, hidden)

    def step(self, t, bias, state, w_zr_t, w_n_t, inputs=()):
        """The state after bin t from the state before: gates' input = bias (G × 1 or trials ×
        3·hidden) + Σ x W_xᵀ over `inputs`, pairs (x: G × trials × k, W_xᵀ: G × k × 3·hidden). Each input
        is projected here, bin by bin, straight into the gate buffers: a projection of all bins at once
        would write (and read back) a bins × trials × 3·hidden tensor, on a CPU slower than the
        matmuls' difference in size."""
        hidden = self.hidden
        gates = torch.baddbmm(bias[..., : 2 * hidden], state, w_zr_t, out=self.gates[:, t])
        for x, w_t in inputs:
            gates.baddbmm_(x, w_t[..., : 2 * hidden])
        gates.sigmoid_()
        reset_state = torch.mul(gates[..., hidden:], state, out=self.reset_state[:, t])
        candidate = self.candidate[:, t]
        scale = 2 if self.tanh_by_sigmoid else 1
        torch.baddbmm(bias[..., 2 * hidden :], reset_state, w_n_t, beta=scale, alpha=scale, out=candidate)
        for x, w_t in inputs:
            candidate.baddbmm_(x, w_t[..., 2 * hidden :], alpha=scale)
        if self.tanh_by_sigmoid:
            candidate.sigmoid_().mul_(2).sub_(1)
        else:
            candidate.tanh_()
        if t >= self.clamped_bins:
            return torch.lerp(candidate, state, gates[..., :hidden], out=self.states[:, t])  # z ⊙ h + (1 − z) ⊙ n
        unclamped = torch.lerp(candidate, state, gates[..., :hidden], out=self.unclamped[:, t])
        return torch.clamp(unclamped, -self.clip, self.clip, out=self.states[:, t])

    def start_backward(self, states, initial_state):
        """Reattach the saved states; allocate the backward pass's scratch tensors. Returns the tensor
        the caller fills with each bin's incoming state gradient before `step_back`."""
        self.states, self.initial_state = states, initial_state
        self.grad, self.scratch, self.d_reset_state = (torch.empty_like(initial_state) for _ in range(3))
        self.d_states = [torch.empty_like(initial_state) for _ in range(2)]  # this bin's result, the last one's
        self.unchanged = torch.empty_like(initial_state, dtype=torch.bool)
        return self.grad

    def step_back(self, t, d_projected, w_zr, w_n):
        """Writes the gradient of bin t's projected input into `d_projected` (G × trials × 3·hidden)
        from `self.grad`, that of the state after bin t (which it overwrites); returns the gradient of
        the state before it (valid until the next call but one).

        The clamp passes gradient where it left the state unchanged (|unclamped| ≤ clip, as
        torch.clamp's backward). With g that gradient and h the state before: d(n input) =
        g(1 − z)(1 − n²), d(z input) = g(1 − z) z (h − n), d(r input) = (d(n input) U_n) h r (1 − r), and
        the state before gets g z + (d(n input) U_n) r + d(zr input) U_zr.
        """
        hidden, grad, scratch, d_reset_state = self.hidden, self.grad, self.scratch, self.d_reset_state
        z, r = self.gates[:, t, :, :hidden], self.gates[:, t, :, hidden:]
        candidate = self.candidate[:, t]
        previous = self.initial_state if t == 0 else self.states[:, t - 1]
        if t < self.clamped_bins:
            grad.mul_(torch.eq(self.states[:, t], self.unclamped[:, t], out=self.unchanged))
        d_state = self.d_states[t % 2]
        torch.mul(grad, z, out=d_state)
        grad.sub_(d_state)  # g (1 − z)
        d_n = d_projected[..., 2 * hidden :]
        torch.addcmul(grad, torch.mul(grad, candidate, out=scratch), candidate, value=-1, out=d_n)  # · (1 − n²)
        torch.mul(torch.sub(previous, candidate, out=scratch).mul_(grad), z, out=d_projected[..., :hidden])
        torch.bmm(d_n, w_n, out=d_reset_state)
        d_state.addcmul_(d_reset_state, r)
        d_r = d_reset_state.mul_(previous).mul_(r)
        torch.addcmul(d_r, d_r, r, value=-1, out=d_projected[..., hidden : 2 * hidden])  # · (1 − r)
        return d_state.baddbmm_(d_projected[..., : 2 * hidden], w_zr)

    def weight_grads(self, d_projected):
        """Gradients of U_zr and U_n (G × rows × columns) from all bins' projected-input gradients; ends
        the backward pass (`finish_backward`)."""
        n_groups, hidden = d_projected.shape[0], self.hidden
        d_zr, d_n = d_projected[..., : 2 * hidden], d_projected[..., 2 * hidden :]
        # the state before bin t: the initial state, then the states of all bins but the last
        d_w_zr = torch.bmm(d_zr[:, 0].transpose(1, 2), self.initial_state)
        d_w_zr.baddbmm_(d_zr[:, 1:].reshape(n_groups, -1, 2 * hidden).transpose(1, 2), self.states[:, :-1].reshape(n_groups, -1, hidden))
        d_w_n = torch.bmm(d_n.reshape(n_groups, -1, hidden).transpose(1, 2), self.reset_state.reshape(n_groups, -1, hidden))
        self.finish_backward()
        return d_w_zr, d_w_n

    def finish_backward(self):
        """Drop the reattached saved tensors and the scratch: the states are the autograd node's output,
        and a reference from its context to them would be a cycle (memory freed only by the garbage
        collector, and on a CPU fresh pages for every step)."""
        self.states = self.initial_state = None
        self.grad = self.scratch = self.d_reset_state = self.d_states = self.unchanged = None


class _ClippedGRUSequence(torch.autograd.Function):
    """inputs (G × bins × trials × inputs), W_ih (G × 3·hidden × inputs), b_ih (G × 3·hidden), initial
    state (G × trials × hidden), U_zr, U_n (stacked per group) -> every state (G × bins × trials × hidden).

    The backward pass collects every bin's gate-input gradient (G × bins × trials × 3·hidden), from
    which each weight's gradient is one batched matmul over all bins and trials."""

    @staticmethod
    def forward(ctx, inputs, w_ih, b_ih, initial_state, w_zr, w_n, clip):
        unroll = _Unroll(initial_state, inputs.shape[1], clip)
        state, w_zr_t, w_n_t, w_ih_t, bias = initial_state, w_zr.transpose(1, 2), w_n.transpose(1, 2), w_ih.transpose(1, 2), b_ih.unsqueeze(1)
        for t in range(inputs.shape[1]):
            state = unroll.step(t, bias, state, w_zr_t, w_n_t, inputs=[(inputs[:, t], w_ih_t)])
        states = unroll.states
        unroll.states = unroll.initial_state = None  # inputs and outputs go through save_for_backward
        ctx.unroll = unroll
        ctx.save_for_backward(inputs, w_ih, initial_state, states, w_zr, w_n)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    @autocast_off
    def backward(ctx, d_states):
        inputs, w_ih, initial_state, states, w_zr, w_n = ctx.saved_tensors
        unroll = ctx.unroll
        grad = unroll.start_backward(states, initial_state)
        d_projected = states.new_empty(*states.shape[:-1], 3 * unroll.hidden)
        d_bias = states.new_zeros(states.shape[0], 3 * unroll.hidden)
        d_state = None
        for t in reversed(range(states.shape[1])):
            if d_state is None:
                grad.copy_(d_states[:, t])
            else:
                torch.add(d_states[:, t], d_state, out=grad)
            d_state = unroll.step_back(t, d_projected[:, t], w_zr, w_n)
            d_bias += d_projected[:, t].sum(1)  # while in cache: one pass over the whole buffer is memory-bound
        n_groups, n_inputs = inputs.shape[0], inputs.shape[-1]
        flat = d_projected.view(n_groups, -1, d_projected.shape[-1])
        d_w_ih = torch.bmm(flat.transpose(1, 2), inputs.reshape(n_groups, -1, n_inputs))
        d_inputs = torch.bmm(flat, w_ih).view(inputs.shape) if ctx.needs_input_grad[0] else None
        return (d_inputs, d_w_ih, d_bias, d_state, *unroll.weight_grads(d_projected), None)


class ClippedGRU(nn.Module):
    """A clipped GRU cell unrolled over the bins of (trials × bins × inputs); returns every state."""

    def __init__(self, input_size, hidden_size, clip, eager=False):
        super().__init__()
        self.cell = ClippedGRUCell(input_size, hidden_size, clip)
        self.eager = eager

    def forward(self, inputs, initial_state):
        if not self.eager:
            return unroll_clipped_grus([self.cell], inputs.transpose(0, 1).unsqueeze(0), initial_state.unsqueeze(0))[0].transpose(0, 1)
        hidden, states = initial_state, []
        for step_input in inputs.unbind(1):
            hidden = self.cell(step_input, hidden)
            states.append(hidden)
        return torch.stack(states, dim=1)


class BidirectionalClippedGRU(nn.Module):
    """Forward and backward clipped GRUs from learned initial states.

    Returns (outputs, final): outputs are trials × bins × 2·hidden (forward then backward state at each
    bin), final the concatenated last forward and last backward (i.e. first-bin) states. The fast path
    runs both directions as the two groups of one fused recurrence (`run_bidirectional`).
    """

    def __init__(self, input_size, hidden_size, clip, eager=False):
        super().__init__()
        self.forward_gru = ClippedGRU(input_size, hidden_size, clip, eager)
        self.backward_gru = ClippedGRU(input_size, hidden_size, clip, eager)
        self.initial_states = nn.Parameter(torch.zeros(2, hidden_size))
        self.eager = eager

    @property
    def cells(self):
        return [self.forward_gru.cell, self.backward_gru.cell]

    def forward(self, inputs):
        if not self.eager:
            forward_states, reversed_states = run_bidirectional([self], [inputs])[0]
            outputs = torch.cat([forward_states, reversed_states.flip(0)], dim=-1).transpose(0, 1)
            return outputs, final_states(forward_states, reversed_states)
        n_trials = inputs.shape[0]
        forward_states = self.forward_gru(inputs, self.initial_states[0].expand(n_trials, -1))
        backward_states = self.backward_gru(inputs.flip(1), self.initial_states[1].expand(n_trials, -1)).flip(1)
        final = torch.cat([forward_states[:, -1], backward_states[:, 0]], dim=-1)
        return torch.cat([forward_states, backward_states], dim=-1), final


def run_bidirectional(grus, inputs):
    """The states of each BidirectionalClippedGRU in `grus` on its inputs (trials × bins × inputs), all
    run as one fused recurrence (their cells the same sizes, the inputs the same shape). Per gru:
    (forward states, backward states in the order computed, i.e. last bin first), bins × trials × hidden."""
    n_trials, n_bins, n_inputs = inputs[0].shape
    if any(sequence.requires_grad for sequence in inputs):
        sequences = []
        for sequence in inputs:
            sequences += [sequence.transpose(0, 1), sequence.transpose(0, 1).flip(0)]
        stacked = torch.stack(sequences)
    else:  # data: each direction written once into the stack, no intermediate flipped copy
        stacked = inputs[0].new_empty(2 * len(inputs), n_bins, n_trials, n_inputs)
        backwards = torch.arange(n_bins - 1, -1, -1, device=stacked.device)
        for i, sequence in enumerate(inputs):
            stacked[2 * i].copy_(sequence.transpose(0, 1))
            torch.index_select(sequence.transpose(0, 1), 0, backwards, out=stacked[2 * i + 1])
    initial = torch.cat([gru.initial_states for gru in grus]).unsqueeze(1).expand(-1, n_trials, -1)
    states = unroll_clipped_grus([cell for gru in grus for cell in gru.cells], stacked, initial)
    return list(zip(states[0::2], states[1::2]))


def final_states(forward_states, reversed_states):
    """A bidirectional GRU's final states from `run_bidirectional`'s: last forward, then last backward
    (the backward one at the first bin)."""
    return torch.cat([forward_states[-1], reversed_states[-1]], dim=-1)
