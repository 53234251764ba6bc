"""Fixed points of learned autonomous dynamics and the eigenvalues of their Jacobians.

Optimisation-based search (Sussillo & Barak 2013, as used by Sedler et al. 2023): start from many
states sampled along the model's own latent trajectories plus small noise, minimise
q(x) = ½‖r(x)‖² with Adam, where r is the dynamics' `fixed_point_residual` (F(x) − x for a discrete
map, the vector field for an ODE); keep the points with q below `tolerance`, merge those closer
than `unique_distance`, and take eigenvalues of the Jacobian of the one-step map (`dynamics.step`, one
bin), comparable to the true flow's exact one-bin map exp(dt·J) (data.attractors.one_step_eigenvalues).
"""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FixedPoints:
    points: np.ndarray  # (k, latent)
    speed: np.ndarray  # (k,) q at each point
    eigvals: np.ndarray  # (k, latent) complex, sorted by decreasing magnitude


def find_fixed_points(
    dynamics,
    trajectories,
    n_starts=1024,
    noise_scale=0.01,
    learning_rate=1e-2,
    max_iterations=5000,
    tolerance=1e-9,
    unique_distance=1e-3,
    seed=0,
):
    generator = torch.Generator().manual_seed(seed)
    for parameter in dynamics.parameters():
        parameter.requires_grad_(False)
    states = torch.as_tensor(trajectories, dtype=torch.float32).reshape(-1, trajectories.shape[-1])
    starts = states[torch.randint(len(states), (n_starts,), generator=generator)]
    x = (starts + noise_scale * torch.randn(starts.shape, generator=generator)).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=learning_rate)
    for _ in range(max_iterations):
        q = 0.5 * dynamics.fixed_point_residual(x).pow(2).sum(dim=1)
        if bool((q < tolerance).all()):
            break
        optimizer.zero_grad()
        q.sum().backward()
        optimizer.step()
    with torch.no_grad():
        q = 0.5 * dynamics.fixed_point_residual(x).pow(2).sum(dim=1)
    keep = (q < tolerance).numpy()
    points, speed = _unique(x.detach().numpy()[keep], q.numpy()[keep], unique_distance)
    eigvals = np.array([_step_eigenvalues(dynamics, p) for p in points]).reshape(points.shape)
    return FixedPoints(points=points, speed=speed, eigvals=eigvals)


def _unique(points, speed, distance):
    """Greedy merge, slowest point first, of points within `distance` of a kept one."""
    kept = []
    for i in np.argsort(speed):
        if all(np.linalg.norm(points[i] - points[j]) > distance for j in kept):
            kept.append(i)
    return points[kept].reshape(len(kept), points.shape[1]), speed[kept]


def _step_eigenvalues(dynamics, point):
    jacobian = torch.autograd.functional.jacobian(
        lambda s: dynamics.step(s[None])[0], torch.as_tensor(point, dtype=torch.float32)
    ).numpy()
    values = np.linalg.eigvals(jacobian)
    return values[np.argsort(-np.abs(values))]
