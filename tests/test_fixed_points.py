"""Fixed-point search on dynamics whose fixed points and Jacobians are known exactly."""

import numpy as np
import pytest
import scipy.linalg
import torch

from latentdyn.data.attractors import SYSTEMS, one_step_eigenvalues
from latentdyn.metrics.fixed_points import find_fixed_points
from latentdyn.models.components import GRUDynamics, NeuralODEDynamics


def contracting_node(solver, shift):
    """Vector field f(x) = -tanh(x - shift): one fixed point at `shift`, Jacobian -I there."""
    dynamics = NeuralODEDynamics(latent_size=3, hidden_size=3, n_steps=11, solver=solver)
    with torch.no_grad():
        first, _, second = dynamics.vector_field
        first.weight.copy_(torch.eye(3))
        first.bias.copy_(-torch.tensor(shift))
        second.weight.copy_(-torch.eye(3))
        second.bias.zero_()
    return dynamics


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_node_fixed_point_and_eigenvalues(solver):
    shift = [0.5, -1.0, 2.0]
    dynamics = contracting_node(solver, shift)
    trajectories = np.random.default_rng(0).normal(size=(4, 10, 3)) + shift
    found = find_fixed_points(dynamics, trajectories, n_starts=32, max_iterations=3000, learning_rate=5e-2, tolerance=1e-10)
    assert len(found.points) == 1
    assert np.allclose(found.points[0], shift, atol=1e-4)
    dt = 0.1
    expected = 1 - dt if solver == "euler" else 1 - dt + dt**2 / 2 - dt**3 / 6 + dt**4 / 24
    assert np.allclose(found.eigvals[0], expected, atol=1e-5)


def test_gru_fixed_points_satisfy_the_map():
    torch.manual_seed(0)
    dynamics = GRUDynamics(latent_size=4)
    trajectories = dynamics.unroll(torch.randn(8, 4), 30).detach().numpy()
    found = find_fixed_points(dynamics, trajectories, n_starts=64, max_iterations=4000, tolerance=1e-10)
    assert len(found.points) >= 1
    points = torch.as_tensor(found.points, dtype=torch.float32)
    assert torch.allclose(dynamics.step(points), points, atol=1e-4)
    assert found.eigvals.shape == (len(found.points), 4)


class ExactLinearFlow(torch.nn.Module):
    """dx/dt = A x stepped exactly over one bin, x -> exp(dt·A) x: a model that learned the flow perfectly."""

    def __init__(self, a, dt):
        super().__init__()
        self.map = torch.as_tensor(scipy.linalg.expm(dt * a), dtype=torch.float32)

    def step(self, x):
        return x @ self.map.T

    def fixed_point_residual(self, x):
        return self.step(x) - x


def test_true_eigenvalues_are_the_exact_one_bin_map_as_a_models_step_gives_them():
    known = np.array([-0.5, -1 + 2j, -1 - 2j])  # continuous-time eigenvalues of A
    a = np.array([[-0.5, 0.0, 0.0], [0.0, -1.0, -2.0], [0.0, 2.0, -1.0]])
    dt = 0.1
    truth = one_step_eigenvalues(a, dt)
    np.testing.assert_allclose(np.sort_complex(truth), np.sort_complex(np.exp(dt * known)))
    found = find_fixed_points(ExactLinearFlow(a, dt), np.random.default_rng(0).normal(size=(2, 5, 3)) * 0.01,
                              n_starts=8, tolerance=1e-12)
    np.testing.assert_allclose(found.points, 0.0, atol=1e-5)
    np.testing.assert_allclose(np.sort_complex(found.eigvals[0]), np.sort_complex(truth), atol=1e-5)
    euler = np.linalg.eigvals(np.eye(3) + dt * a)  # the convention replaced: off by O(dt²) per bin
    assert not np.allclose(np.sort_complex(euler), np.sort_complex(truth), atol=1e-3)


def test_rossler_centre_lies_on_the_unit_circle_in_the_one_bin_convention():
    system = SYSTEMS["rossler"]
    values = one_step_eigenvalues(system.jacobian(system.fixed_points()[0]), system.sample_step)
    rotating = values[np.abs(values.imag) > 1e-9]
    assert np.abs(rotating) == pytest.approx([1.0, 1.0], abs=0.01)  # Euler's I + dt·J gave 1.36
