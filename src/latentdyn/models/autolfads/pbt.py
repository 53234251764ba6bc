"""Population-based training as AutoLFADS runs it (Keshtkaran et al. 2022, Nature Methods), as plain
functions of scores and hyperparameters: no Ray here, so every choice is unit-tested on scripted scores.
models/autolfads/tune.py hands them to Ray Tune.

The published choices (README §9, after lfads-torch's scripts/run_pbt.py and extensions/tune.py):

- Selection: a binary tournament after every generation. The workers are shuffled and paired; in each
  pair the worse score (a lower smoothed validation NLL is better) copies the better one's weights and
  optimiser state and perturbs its hyperparameters. Half the population is replaced each generation, as
  in lfads-torch (autolfads-tf2 instead has each worker face one random rival). A score that is NaN or
  infinite always loses, so a worker that diverged is replaced by a live one.
- Exploration: each searched hyperparameter is multiplied by 1 + u, |u| uniform in [0.002 w, w] with w
  its explore weight and a random sign, redrawn until the result lies inside its range (lfads-torch's
  `enforce_limits`); a range that does not bound exploration (the KL and L2 scales in lfads-torch) only
  bounds the initial draw. u is drawn uniformly as in lfads-torch (autolfads-tf2 draws it log-uniformly).
- Initial values: drawn uniformly, or log-uniformly for `log` ranges, unless the range fixes an `init`
  (the learning rate starts at 4e-3 and the CD rate at 0.5 in every worker).
- Stopping: after each generation the population's best score is recorded; the search stops once the
  best of the last `patience` generations improves on the best before them by no more than a relative
  `tolerance` (4 generations, 5e-4), or at a cap on generations.
"""

import math
from dataclasses import dataclass

import numpy as np

from latentdyn.errors import ConfigError

MIN_EXPLORE_FRACTION = 0.002  # |u| >= 0.002 * w: every perturbation moves the value a little


@dataclass(frozen=True)
class SearchRange:
    """One searched hyperparameter: its range, explore weight and how it is first drawn."""

    low: float
    high: float
    explore_weight: float
    log: bool = False  # initial draw log-uniform (the KL and L2 scales)
    init: float | None = None  # every worker starts here instead of a random draw
    bounded: bool = True  # exploration stays inside [low, high]; else the range only bounds the initial draw

    @classmethod
    def from_params(cls, spec, where="pbt.search.<name>"):
        """The range of the config's `spec`; ConfigError naming the key where the schema cannot check it
        (an empty range, a log-uniform draw from 0, a start outside the range)."""
        low, high, init = spec["low"], spec["high"], spec.get("init")
        if not low < high:
            raise ConfigError(f"config: key '{where}.high': {high} must be above low ({low})")
        if spec.get("log", False) and low <= 0:
            raise ConfigError(f"config: key '{where}.low': {low}; a log-uniform draw needs low > 0")
        if init is not None and not low <= init <= high:
            raise ConfigError(f"config: key '{where}.init': {init} is outside [{low}, {high}]")
        return cls(low=low, high=high, explore_weight=spec["explore_weight"], log=spec.get("log", False), init=init,
                   bounded=spec.get("bounded", True))

    def allows(self, value):
        return value > 0 if not self.bounded else self.low <= value <= self.high


def initial_values(ranges, rng):
    """Starting hyperparameters of one worker: {name: value} for `ranges` ({name: SearchRange})."""
    values = {}
    for name, spec in ranges.items():
        if spec.init is not None:
            values[name] = float(spec.init)
        elif spec.log:
            values[name] = float(math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))))
        else:
            values[name] = float(rng.uniform(spec.low, spec.high))
    return values


def perturbation_factor(spec, rng):
    """1 + u with |u| uniform in [0.002 w, w] and a random sign."""
    w = spec.explore_weight
    return 1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(MIN_EXPLORE_FRACTION * w, w)


def perturb(values, ranges, rng, max_draws=1000):
    """`values` with every searched hyperparameter multiplied by a fresh `perturbation_factor`, redrawn
    until the result is allowed by its range. A value at a bound can always move inward, so redrawing
    ends; `max_draws` only guards against a range narrower than the smallest step, and then the value is
    kept as it is."""
    perturbed = dict(values)
    for name, spec in ranges.items():
        for _ in range(max_draws):
            candidate = values[name] * perturbation_factor(spec, rng)
            if spec.allows(candidate):
                perturbed[name] = float(candidate)
                break
    return perturbed


def tournament(scores, rng):
    """Binary tournament: (winner, loser) pairs of worker indices, the loser to copy the winner.

    `scores` (lower is better) indexed by worker; workers are shuffled and paired in order, so with an
    odd population one worker sits the generation out. A NaN or infinite score always loses; of two
    such, the first of the shuffled pair loses.
    """
    order = rng.permutation(len(scores))
    pairs = []
    for a, b in zip(order[0::2], order[1::2]):
        a, b = int(a), int(b)
        pairs.append((b, a) if _worse(scores[a], scores[b]) else (a, b))
    return pairs


def _worse(x, y):
    """Whether score x loses to score y (non-finite loses; a tie goes to y)."""
    if not math.isfinite(x):
        return True
    if not math.isfinite(y):
        return False
    return x >= y


class ImprovementStopper:
    """The improvement-ratio stopping rule on the population's best score per generation.

    Stops once `patience` generations have passed after at least one earlier generation and the best of
    the last `patience` generations improves on the best before them by no more than `tolerance`
    relative to that earlier best; or when `max_generations` generations have run. Its state is a plain
    dict (`state_dict`/`load_state_dict`) so a restored search keeps counting where it stopped.
    """

    def __init__(self, patience=4, tolerance=5e-4, max_generations=None):
        self.patience = patience
        self.tolerance = tolerance
        self.max_generations = max_generations
        self.bests = []  # the population's best finite score of each finished generation (NaN if none)

    def add_generation(self, scores):
        """Record one finished generation's scores; returns whether the search should stop now."""
        finite = [s for s in scores if math.isfinite(s)]
        self.bests.append(min(finite) if finite else math.nan)
        return self.should_stop()

    def improvement(self):
        """Relative improvement of the last `patience` generations' best over the best before them, or
        None while fewer than `patience` + 1 generations have run."""
        if len(self.bests) <= self.patience:
            return None
        before, recent = self.bests[: -self.patience], self.bests[-self.patience :]
        previous, latest = np.nanmin(before + [math.inf]), np.nanmin(recent + [math.inf])
        if not math.isfinite(previous):
            return math.inf if math.isfinite(latest) else 0.0
        return float((previous - latest) / abs(previous)) if previous != 0 else float(previous - latest)

    def should_stop(self):
        if self.max_generations is not None and len(self.bests) >= self.max_generations:
            return True
        ratio = self.improvement()
        return ratio is not None and ratio <= self.tolerance

    def state_dict(self):
        return {"bests": list(self.bests)}

    def load_state_dict(self, state):
        self.bests = list(state["bests"])
