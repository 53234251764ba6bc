"""Chaotic-attractor spiking datasets with ground truth (Sedler, Versteeg & Pandarinath 2023).

Recipe (paper code `snel-repo/expressive-latent-dynamics-paper`, `paper_src/data.py`, with dysts 0.1
system parameters): one long trajectory of `n_trials * n_steps` samples at a fixed sampling step, cut
into trials; a random readout W ~ U(-0.5, 0.5) of shape (3, n_neurons), columns sorted by W's first
row; activity = latents @ W, z-scored per neuron; rates = exp(activity) in spikes per bin;
spikes ~ Poisson(rates). Trials are split train/valid/test with fixed sizes (1280/320/400 in the paper).

The sampling steps are dysts' `pts_per_period` resampling (100 points a period for Lorenz, 35 for
Rössler and Arneodo) expressed as fixed steps (the paper's `fixedpoints.py`). The fixed-point
comparison uses the same step: the true flow's exact map over one bin, exp(dt·J), against the model's
one-step map (one_step_eigenvalues).
"""

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp


@dataclass(frozen=True)
class ChaoticSystem:
    name: str
    params: dict
    sample_step: float
    initial_state: tuple

    def vector_field(self, t, state):
        return _FIELDS[self.name](state, **self.params)

    def jacobian(self, state):
        return _JACOBIANS[self.name](state, **self.params)

    def fixed_points(self):
        return _FIXED_POINTS[self.name](**self.params)


def _lorenz(s, sigma, rho, beta):
    x, y, z = s
    return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


def _lorenz_jac(s, sigma, rho, beta):
    x, y, z = s
    return np.array([[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]])


def _lorenz_fps(sigma, rho, beta):
    r = np.sqrt(beta * (rho - 1))
    return np.array([[0.0, 0.0, 0.0], [r, r, rho - 1], [-r, -r, rho - 1]])


def _rossler(s, a, b, c):
    x, y, z = s
    return np.array([-y - z, x + a * y, b + z * (x - c)])


def _rossler_jac(s, a, b, c):
    x, y, z = s
    return np.array([[0.0, -1.0, -1.0], [1.0, a, 0.0], [z, 0.0, x - c]])


def _rossler_fps(a, b, c):
    d = np.sqrt(c**2 - 4 * a * b)
    return np.array([[(c + s * d) / 2, -(c + s * d) / (2 * a), (c + s * d) / (2 * a)] for s in (1, -1)])


def _arneodo(s, a, b, c, d):
    x, y, z = s
    return np.array([y, z, -a * x - b * y - c * z + d * x**3])


def _arneodo_jac(s, a, b, c, d):
    x, _, _ = s
    return np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-a + 3 * d * x**2, -b, -c]])


def _arneodo_fps(a, b, c, d):
    r = np.sqrt(a / d)
    return np.array([[0.0, 0.0, 0.0], [r, 0.0, 0.0], [-r, 0.0, 0.0]])


_FIELDS = {"lorenz": _lorenz, "rossler": _rossler, "arneodo": _arneodo}
_JACOBIANS = {"lorenz": _lorenz_jac, "rossler": _rossler_jac, "arneodo": _arneodo_jac}
_FIXED_POINTS = {"lorenz": _lorenz_fps, "rossler": _rossler_fps, "arneodo": _arneodo_fps}

# Sampling steps are the paper's (fixedpoints.py): dysts' period-based resampling of each system.
SYSTEMS = {
    "lorenz": ChaoticSystem("lorenz", {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}, 0.015008107200628729, (-9.79, -15.04, 20.53)),
    "rossler": ChaoticSystem("rossler", {"a": 0.2, "b": 0.2, "c": 5.7}, 0.16881835460662842, (6.5, 0.0, 0.3)),
    "arneodo": ChaoticSystem("arneodo", {"a": -5.5, "b": 4.5, "c": 1.0, "d": -1.0}, 0.0904035028815997, (-1.0, 0.5, 0.3)),
}


def simulate_trajectory(system, n_samples, burn_in_samples=1000):
    """Integrate `system` and return `n_samples` states after a burn-in.

    The paper integrates with Radau; these systems are not stiff and DOP853 at rtol 1e-8 gives the
    same attractor about five times faster (trajectories of chaotic systems diverge either way).
    """
    total = n_samples + burn_in_samples
    t_eval = np.arange(total) * system.sample_step
    solution = solve_ivp(
        system.vector_field,
        (0.0, t_eval[-1]),
        np.asarray(system.initial_state, dtype=float),
        method="DOP853",
        t_eval=t_eval,
        rtol=1e-8,
        atol=1e-8,
    )
    if not solution.success:
        raise RuntimeError(f"integration of {system.name} failed: {solution.message}")
    return solution.y.T[burn_in_samples:]


def one_step_eigenvalues(jacobian, step):
    """Eigenvalues of the flow's exact map over one `step` linearised at a fixed point, exp(step·J), i.e.
    exp(step·λ) for each eigenvalue λ of J, by decreasing modulus: the terms of a model's one-step map
    (metrics/fixed_points.py). Euler's I + step·J is not: it puts Rössler's centre at |λ| = 1.36."""
    values = np.exp(step * np.linalg.eigvals(jacobian))
    return values[np.argsort(-np.abs(values))]


def split_indices(n_trials, split_sizes, rng):
    """Random disjoint trial indices for each split, sized as `split_sizes` (sorted within a split)."""
    if sum(split_sizes.values()) != n_trials:
        raise ValueError(f"split sizes {split_sizes} do not add up to n_trials={n_trials}")
    order = rng.permutation(n_trials)
    splits, start = {}, 0
    for name, size in split_sizes.items():
        splits[name] = np.sort(order[start : start + size])
        start += size
    return splits


def make_attractor_dataset(system_name, n_neurons, n_trials, n_steps, split_sizes, seed):
    """Simulate one attractor dataset; returns (arrays, attrs) in the binned-dataset format.

    Splits map to the format's names as train -> train, valid -> valid, test -> eval: models select
    checkpoints on the paper's validation trials and are scored on its test trials.
    """
    system = SYSTEMS[system_name]
    rng = np.random.default_rng(seed)
    latents = simulate_trajectory(system, n_trials * n_steps)
    readout = rng.uniform(-0.5, 0.5, size=(3, n_neurons))
    readout = readout[:, np.argsort(readout[0])]
    activity = latents @ readout
    activity = (activity - activity.mean(axis=0)) / activity.std(axis=0)
    rates = np.exp(activity)
    spikes = rng.poisson(rates).astype(np.float32)
    shape = (n_trials, n_steps)
    latents, rates, spikes = (a.reshape(*shape, -1) for a in (latents, rates, spikes))

    splits = split_indices(n_trials, split_sizes, rng)
    arrays = {}
    for split, name in (("train", "train"), ("valid", "valid"), ("test", "eval")):
        idx = splits[split]
        arrays[f"{name}_spikes_heldin"] = spikes[idx]
        arrays[f"{name}_true_rates_heldin"] = rates[idx]
        arrays[f"{name}_true_latents"] = latents[idx]
        arrays[f"{name}_trial_ids"] = idx.astype(np.int64)
    fixed_points = system.fixed_points()
    eigvals = np.stack([one_step_eigenvalues(system.jacobian(p), system.sample_step) for p in fixed_points])
    arrays["true_fixed_points"] = fixed_points
    arrays["true_step_eigvals_real"] = eigvals.real
    arrays["true_step_eigvals_imag"] = eigvals.imag
    arrays["readout"] = readout
    attrs = {
        "dataset": system_name,
        "bin_width_s": system.sample_step,
        "phase": "synthetic",
        "source": f"latentdyn.data.attractors {system_name} seed={seed}",
        "system_params": system.params,
        "seed": seed,
    }
    return arrays, attrs
