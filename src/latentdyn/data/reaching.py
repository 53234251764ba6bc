"""Simulated centre-out reaching task with known latent dynamics, written in the NLB MC_Maze NWB layout.

Why: a dataset whose true latents, rates and dynamics are known, that every downstream rule treats
exactly like an MC_Maze recording (same NWB fields, same binning), so models and metrics can be
checked against ground truth, and generation of reach directions never seen in training can be tested.

Design (all times on a 1 ms grid; every trial event is a whole number of milliseconds):

* Task. Each trial: ``start_time``; a target appears (``target_on_time``, 100-200 ms later); a delay
  of 300-700 ms ends at ``go_cue_time``; movement starts ``rt`` = 250-350 ms later
  (``move_onset_time``); the trial ends 800 ms after movement onset (so move onset -250..+450 ms plus
  the 200 ms forward-prediction window fit inside it), then an inter-trial gap of 100-300 ms.
  ``trial_type`` is the reach direction index ``j`` (angle ``2*pi*j/n_directions``); there is one maze
  per direction (``maze_id = j``) and one version (``trial_version = 0``).
* Rotational latents. ``2*len(PLANE_FREQUENCIES_HZ)`` planes, each written as a complex number ``z``
  with ``dz/dt = (-DAMPING_PER_S + i*omega) z`` during and after the movement (damped rotation; every
  frequency is used by two planes). From target onset to move onset the planes instead relax
  (time constant ``PREP_TAU_S``) towards a preparatory state ``z0_k = r*exp(i*(h_k*theta + phi_k))``
  plus small per-trial noise, so the state at move onset is a smooth (first-harmonic) function of the
  reach direction ``theta``; ``h_k = +1`` for one plane of each frequency and ``-1`` for the other.
* Condition-independent latent. One extra latent: a smooth step that rises 100 ms before move onset
  and falls 400 ms after it, identical for every direction (the large condition-invariant signal of
  motor cortex).
* Behaviour. Hand velocity is a fixed linear readout ``C @ latents`` (zero weight on the
  condition-independent latent). ``C`` is chosen so that the preparatory states are output-null
  (the hand is still during the delay) and so that the velocity of every reach is a straight,
  bell-shaped profile towards its target: with planes of opposite handedness ``h`` paired, the
  velocity for direction ``theta`` is ``s(t) * (cos theta, sin theta)``, where ``s(t)`` is a sum of
  damped cosines fitted by least squares to a minimum-jerk speed profile of a ``REACH_DISTANCE_MM``
  reach lasting ``REACH_DURATION_S``. As the movement dynamics are linear and autonomous, velocity
  some lag later (the benchmark decodes it 100 ms ahead) is also linear in the current latents
  during the movement. Hand position is the running integral of velocity, restarted at
  the centre at every trial start (the return to the centre between trials is not simulated);
  ``cursor_pos`` equals ``hand_pos``.
* Neurons. ``rate_n(t) = exp(b_n + W_n @ latents(t))`` in Hz, with random baselines and weights (from
  the seed); spikes are Poisson counts per 1 ms bin, each spike placed at a random microsecond inside
  its bin. About ``heldout_fraction`` of the units, chosen at random, are flagged ``heldout``.
* Splits. Each direction's trials are divided train/val/test by ``split_fractions`` (whole directions are
  withheld from training downstream, on the binned file: data/subsets.py).

Outputs: the NWB file, and beside it the ground truth ``<name>_truth.h5`` with datasets
``timestamps`` (s), ``rates`` (time x units in NWB unit order, Hz) and ``latents`` (time x latent
dims), and attributes describing the generator. Both are written atomically.
"""

import dataclasses
import datetime
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
from hdmf.common import ElementIdentifiers, VectorData, VectorIndex
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import SpatialSeries
from pynwb.misc import Units
from scipy.special import expit

from latentdyn.errors import InputError
from latentdyn.io import atomic_path

GENERATOR = "latentdyn.data.reaching"
GENERATOR_VERSION = 1
DT_S = 0.001

PLANE_FREQUENCIES_HZ = (0.7, 1.4, 2.1)
DAMPING_PER_S = 4.0
PREP_TAU_S = 0.08
PREP_NOISE = 0.1  # per-trial spread of the preparatory state, relative to its norm (which is 1)
REACH_DISTANCE_MM = 100.0
REACH_DURATION_S = 0.5
CIS_RISE_S, CIS_FALL_S = -0.1, 0.4  # condition-independent latent's edges, relative to move onset
CIS_RISE_WIDTH_S, CIS_FALL_WIDTH_S = 0.025, 0.05
N_LATENTS = 4 * len(PLANE_FREQUENCIES_HZ) + 1  # two planes (x, y) per frequency, and the condition-independent latent

TARGET_ON_AFTER_START_MS = (100, 200)
DELAY_MS = (300, 700)
REACTION_TIME_MS = (250, 350)
TRIAL_END_AFTER_MOVE_MS = 800
INTER_TRIAL_GAP_MS = (100, 300)
SESSION_LEAD_MS = 200
LOG_BASELINE_HZ = (4.0, 25.0)
LOG_RATE_WEIGHT_SD = 0.6
SESSION_START = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)

TRIAL_FIELDS = {
    "split": "data split: train, val or test",
    "trial_type": "reach direction index j (angle 2*pi*j/n_directions)",
    "trial_version": "condition variant (always 0)",
    "maze_id": "maze (one per direction, equal to trial_type)",
    "success": "whether the trial was rewarded (always true)",
    "target_on_time": "time the target appeared (s)",
    "go_cue_time": "time of the go cue (s)",
    "move_onset_time": "time movement started (s)",
    "rt": "reaction time, go cue to movement onset (ms)",
    "delay": "delay, target onset to go cue (ms)",
    "target_pos": "reach target position (mm, x and y, centre at 0)",
}


class MappingConfig:
    """A frozen dataclass of simulation settings built from a config or JSON mapping (lists become
    tuples), unknown keys and unusable values (its `check`) named with `source` in one InputError."""

    @classmethod
    def from_mapping(cls, params, source="simulation settings"):
        known = {field.name for field in dataclasses.fields(cls)}
        for key in params:
            if key not in known:
                raise InputError(source, key, f"unknown parameter; expected one of {sorted(known)}")
        config = cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in params.items()})
        config.check(source)
        return config


@dataclasses.dataclass(frozen=True)
class ReachingConfig(MappingConfig):
    """What varies between simulated reaching datasets; the dynamics themselves are fixed above."""

    n_directions: int = 8
    trials_per_direction: int = 30
    n_neurons: int = 60
    heldout_fraction: float = 0.25
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, val, test
    seed: int = 0

    def check(self, source="reaching config"):
        """Raise InputError for values that cannot give a usable dataset."""
        for name in ("n_directions", "trials_per_direction", "n_neurons"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(source, name, "must be a positive integer")
        if not 0 <= self.heldout_fraction < 1 or self.n_heldout >= self.n_neurons:
            raise InputError(source, "heldout_fraction", "must be in [0, 1) and leave a held-in unit")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 \
                or not np.isclose(sum(self.split_fractions), 1.0):
            raise InputError(source, "split_fractions", "need three non-negative fractions "
                             "(train, val, test) summing to 1")
        if self.split_fractions[0] == 0:
            raise InputError(source, "split_fractions", "the train fraction must be positive")

    @property
    def n_heldout(self):
        return int(round(self.heldout_fraction * self.n_neurons))


@dataclasses.dataclass
class ReachingSession:
    """A simulated session on the 1 ms grid; unit arrays are in NWB unit order."""

    config: ReachingConfig
    timestamps: np.ndarray  # (time,) s
    latents: np.ndarray  # (time, latent dims)
    rates: np.ndarray  # (time, units) Hz, float32
    spike_times: list  # per unit, sorted spike times (s)
    heldout: np.ndarray  # (units,) bool
    trials: dict  # column -> array (one row per trial); start_time, stop_time and TRIAL_FIELDS
    hand_vel: np.ndarray  # (time, 2) mm/s
    hand_pos: np.ndarray  # (time, 2) mm
    generator_attrs: dict  # readout, dynamics and neuron parameters, for the truth file


@dataclasses.dataclass(frozen=True)
class _Dynamics:
    """The fixed latent system: complex planes, their preparatory states and the velocity readout."""

    eigenvalues: np.ndarray  # (planes,) complex: -damping + i*omega
    handedness: np.ndarray  # (planes,) +1 or -1
    phases: np.ndarray  # (planes,) phi_k
    radius: float  # |z0_k|, so that the preparatory state has norm 1
    velocity_readout: np.ndarray  # (2, latent dims) real, zero on the condition-independent latent

    @property
    def n_latents(self):
        return 2 * len(self.eigenvalues) + 1

    def prep_state(self, theta):
        return self.radius * np.exp(1j * (self.handedness * theta + self.phases))

    def real_dynamics_matrix(self):
        """The rotational planes' dynamics as a real block-diagonal matrix (latent order x0, y0, x1, ...)."""
        blocks = [[[z.real, -z.imag], [z.imag, z.real]] for z in self.eigenvalues]
        matrix = np.zeros((2 * len(blocks), 2 * len(blocks)))
        for k, block in enumerate(blocks):
            matrix[2 * k:2 * k + 2, 2 * k:2 * k + 2] = block
        return matrix


def _build_dynamics():
    """Pair each frequency over two planes of opposite handedness and fit the speed profile."""
    omegas = 2 * np.pi * np.asarray(PLANE_FREQUENCIES_HZ)
    t = np.arange(0.0, 2 * REACH_DURATION_S, DT_S)
    phase = np.clip(t / REACH_DURATION_S, 0.0, 1.0)
    target_speed = REACH_DISTANCE_MM * 30 * phase**2 * (1 - phase) ** 2 / REACH_DURATION_S
    # speed(t) = sum_p exp(-damping t) (a_p cos w_p t - b_p sin w_p t), with sum_p a_p = 0 (still at onset)
    decay = np.exp(-DAMPING_PER_S * t)[:, None]
    cos_terms, sin_terms = decay * np.cos(np.outer(t, omegas)), -decay * np.sin(np.outer(t, omegas))
    design = np.hstack([cos_terms[:, :-1] - cos_terms[:, -1:], sin_terms])
    solution = np.linalg.lstsq(design, target_speed, rcond=None)[0]
    n_freq = len(omegas)
    a = np.append(solution[:n_freq - 1], -solution[:n_freq - 1].sum())
    b = solution[n_freq - 1:]

    n_planes = 2 * n_freq
    eigenvalues = np.repeat(-DAMPING_PER_S + 1j * omegas, 2)
    handedness = np.tile([1.0, -1.0], n_freq)
    phases = 2.399963 * np.arange(n_planes)  # golden angle: fixed, well-spread plane orientations
    radius = 1 / np.sqrt(n_planes)
    # velocity (as vx + i vy) = sum over + planes of g e^{-i phi} z / r, plus the conjugate for - planes,
    # with g = (a + i b)/2; that sums to speed(t) * e^{i theta} for every theta.
    gains = np.repeat((a + 1j * b) / 2, 2) * np.exp(-1j * phases) / radius
    readout = np.zeros((2, 2 * n_planes + 1))
    for k, (gain, hand) in enumerate(zip(gains, handedness)):
        readout[:, 2 * k:2 * k + 2] = [[gain.real, -gain.imag], [hand * gain.imag, hand * gain.real]]
    return _Dynamics(eigenvalues, handedness, phases, radius, readout)


def _trial_table(config, rng, directions):
    """Directions, timings and splits of every trial, in presentation order (times in ms)."""
    n_dir, per_dir = config.n_directions, config.trials_per_direction
    direction = rng.permutation(np.repeat(directions, per_dir))
    split = np.empty(direction.size, dtype=object)
    train, val, test = config.split_fractions
    for j in directions:
        rows = rng.permutation(np.flatnonzero(direction == j))
        n_train, n_val = int(round(per_dir * train)), int(round(per_dir * val))
        split[rows] = "test"
        split[rows[:n_train]] = "train"
        split[rows[n_train:n_train + n_val]] = "val"

    def draw(low_high):
        return rng.integers(low_high[0], low_high[1] + 1, size=direction.size)

    target_after_start, delay, rt, gap = (draw(r) for r in (TARGET_ON_AFTER_START_MS, DELAY_MS,
                                                             REACTION_TIME_MS, INTER_TRIAL_GAP_MS))
    durations = target_after_start + delay + rt + TRIAL_END_AFTER_MOVE_MS
    start = SESSION_LEAD_MS + np.concatenate([[0], np.cumsum(durations + gap)[:-1]])
    target_on = start + target_after_start
    go_cue = target_on + delay
    move_onset = go_cue + rt
    stop = move_onset + TRIAL_END_AFTER_MOVE_MS
    theta = 2 * np.pi * direction / n_dir
    trials_ms = dict(start=start, target_on=target_on, move_onset=move_onset)
    session_ms = int(stop[-1] + gap[-1])
    table = {
        "start_time": start * DT_S,
        "stop_time": stop * DT_S,
        "split": split.astype(str),
        "trial_type": direction,
        "trial_version": np.zeros_like(direction),
        "maze_id": direction.copy(),
        "success": np.ones(direction.size, dtype=bool),
        "target_on_time": target_on * DT_S,
        "go_cue_time": go_cue * DT_S,
        "move_onset_time": move_onset * DT_S,
        "rt": rt,
        "delay": delay,
        "target_pos": REACH_DISTANCE_MM * np.stack([np.cos(theta), np.sin(theta)], axis=1),
    }
    return table, trials_ms, theta, session_ms


def _simulate_planes(dynamics, trials_ms, prep_targets, n_ms):
    """Complex plane states on the grid: free damped rotation, except target onset..move onset."""
    planes = np.zeros((n_ms, len(dynamics.eigenvalues)), dtype=complex)
    state = np.zeros(len(dynamics.eigenvalues), dtype=complex)
    cursor = 0

    def rotate_until(end):
        nonlocal state, cursor
        elapsed = np.arange(end - cursor + 1)[:, None] * DT_S
        path = state * np.exp(dynamics.eigenvalues * elapsed)
        planes[cursor:end], state, cursor = path[:-1], path[-1], end

    def prepare_until(end, target):
        nonlocal state, cursor
        elapsed = np.arange(end - cursor + 1)[:, None] * DT_S
        path = target + (state - target) * np.exp(-elapsed / PREP_TAU_S)
        planes[cursor:end], state, cursor = path[:-1], path[-1], end

    for target_on, move_onset, target in zip(trials_ms["target_on"], trials_ms["move_onset"],
                                             prep_targets):
        rotate_until(target_on)
        prepare_until(move_onset, target)
    rotate_until(n_ms)
    return planes


@dataclasses.dataclass(frozen=True)
class Neurons:
    """Each unit's log-rate baseline (log Hz) and latent weights, and whether it is held out."""

    log_baseline: np.ndarray  # (units,)
    log_weights: np.ndarray  # (units, latent dims)
    heldout: np.ndarray  # (units,) bool


def draw_neurons(config, rng):
    """The neurons of a single-session dataset: random baselines and weights, `n_heldout` held out."""
    n_neurons = config.n_neurons
    log_baseline = np.log(rng.uniform(*LOG_BASELINE_HZ, size=n_neurons))
    log_weights = rng.normal(0.0, LOG_RATE_WEIGHT_SD, size=(n_neurons, N_LATENTS))
    heldout = np.zeros(n_neurons, dtype=bool)
    heldout[rng.choice(n_neurons, size=config.n_heldout, replace=False)] = True
    return Neurons(log_baseline, log_weights, heldout)


def simulate_reaching(config, neurons=None, directions=None):
    """Simulate one session (see the module docstring) and return it in memory.

    `neurons` (a Neurons of `config.n_neurons` units) and `directions` (the direction indices presented,
    each `trials_per_direction` times) default to random neurons and every direction; the multisession
    generator (data/multisession.py) gives its own, so sessions differ in units and conditions only.
    """
    config.check()
    trial_rng, noise_rng, neuron_rng, spike_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4))
    dynamics = _build_dynamics()
    directions = np.arange(config.n_directions) if directions is None else np.asarray(directions)
    trials, trials_ms, theta, n_ms = _trial_table(config, trial_rng, directions)

    # per-trial preparatory noise, kept output-null so the hand stays still during the delay
    rotational_readout = dynamics.velocity_readout[:, :-1]
    noise = noise_rng.normal(0.0, PREP_NOISE / np.sqrt(rotational_readout.shape[1]),
                             size=(theta.size, rotational_readout.shape[1]))
    noise -= noise @ rotational_readout.T @ np.linalg.pinv(rotational_readout).T
    prep_targets = dynamics.prep_state(theta[:, None]) + noise[:, 0::2] + 1j * noise[:, 1::2]
    planes = _simulate_planes(dynamics, trials_ms, prep_targets, n_ms)

    grid_ms = np.arange(n_ms)
    trial_of_time = np.searchsorted(trials_ms["start"], grid_ms, side="right") - 1
    since_move_s = (grid_ms - trials_ms["move_onset"][np.maximum(trial_of_time, 0)]) * DT_S
    condition_independent = np.where(trial_of_time >= 0,
                                     expit((since_move_s - CIS_RISE_S) / CIS_RISE_WIDTH_S)
                                     * expit((CIS_FALL_S - since_move_s) / CIS_FALL_WIDTH_S), 0.0)
    latents = np.column_stack([np.stack([planes.real, planes.imag], axis=2).reshape(n_ms, -1),
                               condition_independent])

    hand_vel = latents @ dynamics.velocity_readout.T
    displacement = np.vstack([np.zeros((1, 2)), np.cumsum(hand_vel * DT_S, axis=0)[:-1]])
    segment_start = np.where(trial_of_time >= 0, trials_ms["start"][np.maximum(trial_of_time, 0)], 0)
    hand_pos = displacement - displacement[segment_start]

    neurons = draw_neurons(config, neuron_rng) if neurons is None else neurons
    log_baseline, log_weights, heldout = neurons.log_baseline, neurons.log_weights, neurons.heldout
    rates = latents.astype(np.float32) @ log_weights.T.astype(np.float32)  # float32: halves the memory
    rates += log_baseline.astype(np.float32)
    np.exp(rates, out=rates)
    spike_times = [_poisson_spike_times(rates[:, unit], spike_rng) for unit in range(len(heldout))]

    latent_names = [f"plane{k}_{axis}" for k in range(len(dynamics.eigenvalues)) for axis in "xy"]
    generator_attrs = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "config": json.dumps(dataclasses.asdict(config)),
        "dt_s": DT_S,
        "rates_unit": "Hz",
        "latent_names": json.dumps(latent_names + ["condition_independent"]),
        "rotational_dynamics_matrix": dynamics.real_dynamics_matrix(),
        "velocity_readout": dynamics.velocity_readout,
        "log_rate_baseline": log_baseline,
        "log_rate_weights": log_weights,
        "heldout": heldout,
        "description": "rates = exp(log_rate_baseline + latents @ log_rate_weights.T) Hz; "
                       "hand_vel = latents @ velocity_readout.T (mm/s); rotational latents follow "
                       "d/dt x = rotational_dynamics_matrix @ x from move onset to the next target onset",
    }
    return ReachingSession(config, grid_ms * DT_S, latents.astype(np.float32), rates, spike_times,
                           heldout, trials, hand_vel, hand_pos, generator_attrs)


def _poisson_spike_times(rate_hz, rng):
    """Poisson counts per 1 ms bin; each spike at a random whole microsecond strictly inside its bin."""
    counts = rng.poisson(rate_hz.astype(np.float64) * DT_S)
    bins = np.repeat(np.flatnonzero(counts), counts[counts > 0])
    microseconds = bins * 1000 + rng.integers(1, 1000, size=bins.size)
    return np.sort(microseconds) / 1e6


def write_reaching(session, nwb_path, truth_path):
    """Write the NWB file and its ground-truth sidecar; each appears only once fully written."""
    config = session.config
    nwb = NWBFile(
        session_description=f"simulated centre-out reaching ({GENERATOR} v{GENERATOR_VERSION})",
        identifier=f"latentdyn-reaching-seed{config.seed}",
        session_start_time=SESSION_START,
        file_create_date=SESSION_START,
    )
    for name, description in TRIAL_FIELDS.items():
        nwb.add_trial_column(name, description)
    for row in range(len(session.trials["start_time"])):
        nwb.add_trial(**{name: column[row] for name, column in session.trials.items()})

    nwb.units = _units_table(session.spike_times, session.heldout, len(session.timestamps) * DT_S)

    behavior = nwb.create_processing_module("behavior", "simulated hand kinematics at 1 kHz")
    behavior.add(SpatialSeries(name="hand_pos", data=session.hand_pos, timestamps=session.timestamps,
                               reference_frame="centre of the workspace", unit="mm",
                               description="hand position"))
    behavior.add(TimeSeries(name="hand_vel", data=session.hand_vel, timestamps=session.timestamps,
                            unit="mm/s", description="hand velocity"))
    behavior.add(SpatialSeries(name="cursor_pos", data=session.hand_pos, timestamps=session.timestamps,
                               reference_frame="centre of the workspace", unit="mm",
                               description="cursor position (equal to the hand position)"))

    # truth renames first and the NWB last, so an NWB that exists always has its sidecar
    with atomic_path(nwb_path) as nwb_tmp, atomic_path(truth_path) as truth_tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")  # temporary name
            with NWBHDF5IO(str(nwb_tmp), "w") as io:
                io.write(nwb)
        # libver v108+ stores large attributes (the per-neuron weights) densely
        with h5py.File(truth_tmp, "w", libver=("v108", "latest")) as f:
            f.create_dataset("timestamps", data=session.timestamps)
            f.create_dataset("rates", data=session.rates)
            f.create_dataset("latents", data=session.latents)
            f.attrs.update(session.generator_attrs)


def _units_table(spike_times, heldout, session_end_s):
    """The units table built from whole arrays (adding units one by one converts every spike time
    separately and takes seconds); every unit is observed for the whole session."""
    n_units = len(spike_times)
    spikes = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                        data=np.concatenate(spike_times))
    observed = VectorData(name="obs_intervals", description="the observation intervals for each unit",
                          data=np.tile([[0.0, session_end_s]], (n_units, 1)))
    columns = [
        spikes,
        VectorIndex(name="spike_times_index", target=spikes,
                    data=np.cumsum([len(times) for times in spike_times])),
        observed,
        VectorIndex(name="obs_intervals_index", target=observed, data=np.arange(1, n_units + 1)),
        VectorData(name="heldout", description="unit held out from model input (co-smoothing target)",
                   data=np.asarray(heldout, dtype=bool)),
    ]
    return Units(name="units", description="simulated units",
                 id=ElementIdentifiers(name="id", data=np.arange(n_units)), columns=columns)


def truth_path_for(nwb_path):
    """The ground-truth sidecar's conventional path: `<name>_truth.h5` beside `<name>.nwb`."""
    nwb_path = Path(nwb_path)
    return nwb_path.with_name(f"{nwb_path.stem}_truth.h5")


def make_reaching_dataset(nwb_path, truth_path, config):
    """Simulate with `config` (a ReachingConfig) and write both files; return the session."""
    session = simulate_reaching(config)
    write_reaching(session, nwb_path, truth_path)
    return session
