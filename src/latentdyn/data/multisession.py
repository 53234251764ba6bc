"""Simulated multisession reaching: sessions recorded "months apart" that share latent dynamics but
not neurons, for stitching (README §10; Pandarinath et al. 2018).

Why: stitching is worth testing only where its premise holds and can be checked, so every session here
runs the single-session reaching simulator (data/reaching.py) with the very same latent dynamics and
velocity readout, and differs only in what a real recording changes from day to day:

* Neuron identity and count. A pool of `pool_size` neurons (log-rate baseline and latent weights as in
  reaching.py); each session records its own random subset of `n_neurons[0]..n_neurons[1]` of them, in
  its own order, with its own held-out units.
* Tuning drift. Latent weights follow a random walk over sessions: each session's weights add a step of
  standard deviation `tuning_drift` per weight to the previous session's.
* Firing-rate changes. Each session adds its own Gaussian offset (sd `rate_change`) to every log baseline.
* Conditions that only partly overlap. Session s presents `directions_per_session` consecutive reach
  directions starting at s · n_directions / n_sessions (mod n_directions), so neighbouring sessions share
  most directions and distant ones few; `trial_type` keeps the global direction index.

Each session is written as its own NWB file in the MC_Maze layout with its ground-truth sidecar
(reaching.write_reaching), so the ordinary binning rule reads it. The sidecar's attributes add
`session_index`, `pool_index` (each unit's neuron in the pool) and `directions`.
"""

import dataclasses
import json

import numpy as np

from latentdyn.data.reaching import LOG_BASELINE_HZ, LOG_RATE_WEIGHT_SD, N_LATENTS, MappingConfig, Neurons, \
    ReachingConfig, simulate_reaching, write_reaching
from latentdyn.errors import InputError


@dataclasses.dataclass(frozen=True)
class MultisessionConfig(MappingConfig):
    """What varies between simulated multisession datasets (module docstring)."""

    n_sessions: int = 6
    n_directions: int = 8
    directions_per_session: int = 6
    trials_per_direction: int = 20
    trials_per_direction_by_session: tuple[int, ...] = ()  # one per session, overriding trials_per_direction
    n_neurons: tuple[int, int] = (40, 80)  # each session's unit count, drawn uniformly in this range
    pool_size: int = 200
    tuning_drift: float = 0.1
    rate_change: float = 0.3
    heldout_fraction: float = 0.25
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0

    def check(self, source="multisession config"):
        """Raise InputError for values that cannot give a usable dataset; each session's own
        ReachingConfig is checked too (`session_configs`)."""
        if not isinstance(self.n_sessions, int) or self.n_sessions < 1:
            raise InputError(source, "n_sessions", "must be a positive integer")
        if not 1 <= self.directions_per_session <= self.n_directions:
            raise InputError(source, "directions_per_session", f"must lie in 1..n_directions ({self.n_directions})")
        low_high = self.n_neurons
        if len(low_high) != 2 or not 1 <= low_high[0] <= low_high[1] <= self.pool_size:
            raise InputError(source, "n_neurons", f"needs [low, high] with 1 <= low <= high <= pool_size ({self.pool_size})")
        if self.trials_per_direction_by_session and len(self.trials_per_direction_by_session) != self.n_sessions:
            raise InputError(source, "trials_per_direction_by_session", f"needs one value per session ({self.n_sessions})")
        for name in ("tuning_drift", "rate_change"):
            if getattr(self, name) < 0:
                raise InputError(source, name, "must be non-negative")
        for session in self.session_configs(np.zeros(self.n_sessions, dtype=int) + low_high[1]):
            session.check(source)

    def session_configs(self, n_neurons):
        """Each session's ReachingConfig, with `n_neurons[s]` units and its own seed."""
        trials = self.trials_per_direction_by_session or (self.trials_per_direction,) * self.n_sessions
        seeds = np.random.SeedSequence([self.seed, 1]).generate_state(self.n_sessions)
        return [
            ReachingConfig(n_directions=self.n_directions, trials_per_direction=int(trials[s]), n_neurons=int(n_neurons[s]),
                           heldout_fraction=self.heldout_fraction, split_fractions=self.split_fractions, seed=int(seeds[s]))
            for s in range(self.n_sessions)
        ]

    def directions(self, session):
        """The direction indices session `session` presents (module docstring)."""
        start = session * self.n_directions // self.n_sessions
        return (start + np.arange(self.directions_per_session)) % self.n_directions


def session_neurons(config):
    """Per session: (pool index of each unit, Neurons): subsets of one pool, weights drifting by a random
    walk over sessions, baselines offset per session (module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    pool_baseline = np.log(rng.uniform(*LOG_BASELINE_HZ, size=config.pool_size))
    weights = rng.normal(0.0, LOG_RATE_WEIGHT_SD, size=(config.pool_size, N_LATENTS))
    sessions = []
    for s in range(config.n_sessions):
        if s:
            weights = weights + rng.normal(0.0, config.tuning_drift, size=weights.shape)
        baseline = pool_baseline + rng.normal(0.0, config.rate_change, size=config.pool_size)
        n_units = int(rng.integers(config.n_neurons[0], config.n_neurons[1] + 1))
        pool_index = rng.choice(config.pool_size, size=n_units, replace=False)
        heldout = np.zeros(n_units, dtype=bool)
        heldout[rng.choice(n_units, size=int(round(config.heldout_fraction * n_units)), replace=False)] = True
        sessions.append((pool_index, Neurons(baseline[pool_index], weights[pool_index], heldout)))
    return sessions


def make_multisession_dataset(nwb_paths, truth_paths, config):
    """Simulate `config.n_sessions` sessions and write session s to `nwb_paths[s]` and `truth_paths[s]`;
    return the sessions (reaching.ReachingSession)."""
    if not len(nwb_paths) == len(truth_paths) == config.n_sessions:
        raise InputError("multisession config", "n_sessions", f"{config.n_sessions} sessions but {len(nwb_paths)} output files")
    neurons = session_neurons(config)
    configs = config.session_configs([len(units.heldout) for _, units in neurons])
    sessions = []
    for s, ((pool_index, units), session_config) in enumerate(zip(neurons, configs)):
        session = simulate_reaching(session_config, units, config.directions(s))
        session.generator_attrs.update(
            session_index=s, pool_index=pool_index, directions=config.directions(s),
            multisession_config=json.dumps(dataclasses.asdict(config)),
        )
        write_reaching(session, nwb_paths[s], truth_paths[s])
        sessions.append(session)
    return sessions
