"""Small swappable pieces of latent-dynamics models: encoders, dynamics, readouts, likelihoods.

Each piece does one job and takes its sizes as constructor arguments; nothing reads a global bag of
hyperparameters and no module carries hidden state between calls.
"""

import torch
from torch import nn


class BidirectionalGRUEncoder(nn.Module):
    """Reads a whole trial forwards and backwards and maps the two final states to an initial condition."""

    def __init__(self, input_size, hidden_size, output_size, dropout=0.0):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = BernoulliDropout(dropout)
        self.to_output = nn.Linear(2 * hidden_size, output_size)

    def forward(self, inputs):
        _, final_states = self.gru(inputs)  # (2, batch, hidden)
        summary = torch.cat([final_states[0], final_states[1]], dim=-1)
        return self.dropout(self.to_output(self.dropout(summary)))


class BernoulliDropout(nn.Module):
    """Inverted dropout whose mask is `bernoulli_(1 - p)` from torch's default generator.

    On a CPU this is exactly what `nn.Dropout` draws (ATen's non-fused dropout); on a GPU `nn.Dropout`
    uses a fused kernel with other draws. Drawing the mask this way on every device is what lets a model
    trained in a stack (models/stacking.py), which draws each member's mask from that member's own
    generator, see the masks of its lone run.
    """

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return x * dropout_mask(x.shape, self.p, x.device)


def dropout_mask(shape, p, device, generator=None):
    """The inverted-dropout multiplier: 0 with probability `p`, else 1 / (1 − p)."""
    return torch.empty(shape, device=device).bernoulli_(1 - p, generator=generator).div_(1 - p)


class AutonomousDynamics(nn.Module):
    """A latent state advanced by a learned map `step`; subclasses define `step` and its fixed points.

    States are (…, trials, latent size): any leading dimensions (a stack's members) are carried along."""

    def unroll(self, initial_state, n_steps):
        states = [initial_state]
        for _ in range(n_steps - 1):
            states.append(self.step(states[-1]))
        return torch.stack(states, dim=-2)


class GRUDynamics(AutonomousDynamics):
    """Autonomous GRU: the latent state is the GRU's hidden state, driven by a constant zero input."""

    def __init__(self, latent_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size=1, hidden_size=latent_size)

    def step(self, state):
        return self.cell(state.new_zeros(*state.shape[:-1], 1), state)

    def fixed_point_residual(self, state):
        """Zero exactly at fixed points of the discrete map."""
        return self.step(state) - state


class NeuralODEDynamics(AutonomousDynamics):
    """Neural ODE: an MLP vector field (latent -> hidden tanh -> latent) integrated over t in [0, 1].

    Sedler et al. 2023 integrate with torchdyn's adaptive solver over `n_steps` points on [0, 1]. Here
    one fixed step of `solver` separates output points: "rk4" (4th-order Runge-Kutta) approximates
    the paper's solution closely; "euler" (x + dt·f(x), the map the paper's fixed-point analysis
    linearises) costs a quarter as much. `step` is that map, used for fixed-point Jacobians too.
    """

    def __init__(self, latent_size, hidden_size, n_steps, solver="rk4"):
        super().__init__()
        if solver not in ("rk4", "euler"):
            raise ValueError(f"unknown ODE solver '{solver}' (expected 'rk4' or 'euler')")
        self.vector_field = nn.Sequential(
            nn.Linear(latent_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, latent_size)
        )
        self.dt = 1.0 / (n_steps - 1)
        self.solver = solver

    def step(self, state):
        f, dt = self.vector_field, self.dt
        k1 = f(state)
        if self.solver == "euler":
            return state + dt * k1
        k2 = f(state + 0.5 * dt * k1)
        k3 = f(state + 0.5 * dt * k2)
        k4 = f(state + dt * k3)
        return state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    def fixed_point_residual(self, state):
        """The vector field itself: zero exactly at the ODE's fixed points."""
        return self.vector_field(state)


class LinearReadout(nn.Module):
    """Latent state -> log firing rate of every neuron."""

    def __init__(self, latent_size, n_neurons):
        super().__init__()
        self.linear = nn.Linear(latent_size, n_neurons)

    def forward(self, latents):
        return self.linear(latents)


def poisson_nll_elementwise(log_rates, counts):
    """Poisson negative log-likelihood (with the log n! term) of each entry; counts must be finite.

    The one Poisson formula of the project: models that weight or mask entries themselves (LFADS's
    coordinated dropout and sample validation) take it per entry.
    """
    return torch.exp(log_rates) - counts * log_rates + torch.lgamma(counts + 1)


def poisson_nll(log_rates, counts, weights=None, dims=None):
    """Mean Poisson negative log-likelihood (with the log n! term) over observed entries.

    NaN counts are unobserved and excluded; `weights` (broadcastable, e.g. per time step) rescale
    entries, as the NODE curriculum does. `dims`: the dimensions averaged over (all when None); the
    others stay, e.g. a stack's members.
    """
    observed = ~torch.isnan(counts)
    counts = torch.where(observed, counts, torch.zeros_like(counts))
    nll = poisson_nll_elementwise(log_rates, counts)
    mask = observed.to(nll.dtype)
    if weights is not None:
        mask = mask * weights
    dims = tuple(range(nll.dim())) if dims is None else dims
    return (nll * mask).sum(dims) / observed.sum(dims).clamp_min(1)
