"""LFADS generators: the latent dynamical system, driven by inferred (and external) inputs.

Both speak the decoder's protocol (an input map `weight_ih`, with `bias_ih` or None; `advance(projected,
state)` takes one bin's projected input) and the fixed-point analysis's (`model.dynamics`: `step(state)`
is the zero-input map, `fixed_point_residual(state)` vanishes at its fixed points).
"""

import torch
from torch import nn

from latentdyn.models.components import AutonomousDynamics, NeuralODEDynamics
from latentdyn.models.lfads.cells import ClippedGRUCell


class ClippedGRUGenerator(AutonomousDynamics):
    """lfads-torch's generator: a clipped GRU cell whose input is [external input, inferred input]."""

    def __init__(self, input_size, gen_dim, clip):
        super().__init__()
        self.cell = ClippedGRUCell(input_size, gen_dim, clip)

    @property
    def weight_ih(self):
        return self.cell.weight_ih

    @property
    def bias_ih(self):
        return self.cell.bias_ih

    def advance(self, projected, state):
        return self.cell.advance(projected, state)

    def step(self, state):
        return self.cell.advance(self.cell.bias_ih.expand(*state.shape[:-1], -1), state)

    def fixed_point_residual(self, state):
        return self.step(state) - state

    def recurrent_weights(self):
        return self.cell.recurrent_weights()


class NeuralODEGenerator(AutonomousDynamics):
    """A neural-ODE generator (components.NeuralODEDynamics, Sedler et al. 2023) with additive inputs.

    dx/dt = f(x) + B u. Each bin takes the ODE's own step of f, then adds the input's Euler increment
    dt·B·u (u is constant over a bin): with zero input this is exactly NeuralODEDynamics.step, so the
    fixed points and Jacobians the analysis finds are those of the learned vector field. `n_steps`
    output points span t ∈ [0, 1] as in the paper.
    """

    def __init__(self, input_size, gen_dim, hidden_size, n_steps, solver):
        super().__init__()
        self.ode = NeuralODEDynamics(gen_dim, hidden_size, n_steps, solver)
        self.weight_ih = nn.Parameter(torch.randn(gen_dim, input_size) / max(input_size, 1) ** 0.5)
        self.bias_ih = None  # the vector field has its own biases

    def advance(self, projected, state):
        return self.ode.step(state) + self.ode.dt * projected

    def step(self, state):
        return self.ode.step(state)

    def fixed_point_residual(self, state):
        return self.ode.fixed_point_residual(state)

    def recurrent_weights(self):
        """The vector field's weights: what the L2 penalty on 'recurrent' weights means for an ODE."""
        return [layer.weight for layer in self.ode.vector_field if isinstance(layer, nn.Linear)]
