"""Gaussian-process factor analysis (GPFA; Yu et al. 2009, J Neurophysiol 102:614), the Neural Latents
Benchmark's classic latent baseline, as a model kind (models/kinds.py).

GPFA is Elephant's (`elephant.gpfa.GPFA`, a port of Byron Yu's MATLAB code): factor analysis of
square-root counts whose latents are independent Gaussian processes in time, fitted by EM. The binned
held-in counts are handed to it as what it takes, neo spike trains, with each bin's spikes at the bin's
centre (finer timing is gone after binning), and it bins them again at `bin_factor` data bins. Its
output, the orthonormalised posterior-mean latents, is `latents/{split}_factors`, on the data's bins
(linearly interpolated between GPFA's bin centres when `bin_factor` > 1).

Rates, after nlb_tools' GPFA baseline (examples/baselines/gpfa/run_gpfa.py): GPFA is fitted on the
training trials' held-in units and every split is then transformed, as there. Rates are one Poisson GLM
per unit (models/poisson_glm.py, shared with the smoothing kind: scikit-learn PoissonRegressor, L2 `glm_alpha`) from
the latents of each bin to the unit's counts, held-in and held-out units alike, fit on the training
trials. run_gpfa.py reads held-in rates by a rectified ridge regression from the latents (fit on
training and evaluation trials) and held-out rates by a Poisson GLM from those held-in rates; GLMs on
the latents need no rectification and fit on the training trials only, as the kind contract has it.
Its held-out GLM is unpenalised (alpha 0 on every dataset); on the latents that is singular wherever
latents are nearly collinear (52 latents of 8-dimensional activity in benchmarks/gpfa_fit_time.py), so
`glm_alpha` defaults to 1e-3, the best of {0, 1e-3, 1e-2, 0.1} in a 3-fold CV over the demo reaching
set's training trials.

Forward bins (nlb_tools' GPFA makes no forward predictions): as in the smoothing kind, one Poisson GLM
per unit from the window's last-bin latents plus a one-hot forward-bin index to the unit's forward
counts. GPFA's own forecast, the Gaussian-process posterior beyond the window, decays to the latents'
prior mean within a few of their timescales (initialised at 100 ms; NLB's forward window is 200 ms); the
GLM learns from the training trials how activity continues.

Unobserved (NaN) held-in entries: Elephant's GPFA has no notion of them. `unobserved: refuse` stops with
an InputError; `zero_fill` counts them as no spikes, which is what nlb_tools' tensors hold where this
project's hold NaN (its resampling sums NaN as 0), so the NLB presets use it. GLM targets keep their NaN
and the GLMs leave those entries out. Also refused, with one line naming the key: a trial with no
held-in spike (a recording dropout far more often than silence, which GPFA would read as every unit far
below its mean), a held-in unit that never
fires in training (Elephant would drop it silently), linearly dependent held-in units (e.g. repeated;
Elephant raises on them), more latents than held-in units, a window not divisible by `bin_factor`.

Deterministic: Elephant cuts training trials into 20-bin segments with overlaps drawn from NumPy's
global random state; `fit` draws them from a fixed seed, so seeds do not vary a run (as smoothing).
Cost: EM works on those segments, so an iteration is linear in the training bins (cubic only in
20 × latent_size); inferring a whole trial is cubic in its GPFA bins × latent_size. At MC_Maze's size
(52 latents, 2 CPU cores) a fit of 500 EM iterations takes ~35 min at 20 ms and ~70 min at 5 ms, and
converting counts to neo spike trains and back (Elephant bins them itself) a few minutes of each fit
and predict (benchmarks/gpfa_fit_time.py).
"""

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import neo
import numpy as np
import quantities as pq
from elephant.gpfa import GPFA

from latentdyn.data.prepare import SPLITS
from latentdyn.errors import InputError
from latentdyn.models.poisson_glm import fit_poisson_glms, predict_poisson_glms, with_bin_index

SEGMENT_SEED = 0  # seeds Elephant's random overlaps of training segments


@dataclass
class GPFAModel:
    """Elephant's fitted GPFA and one Poisson GLM per unit: window ("heldin", "heldout") and forward."""

    params: dict
    bin_ms: float | None = None
    gpfa: GPFA | None = None
    window_glms: dict = field(default_factory=dict)
    forward_glms: dict = field(default_factory=dict)


def build(params, shapes):
    return GPFAModel(params)


def fit(model, prepared, params):
    """GPFA on the training trials' held-in counts, then the GLMs from its latents to every unit's counts."""
    data, where = prepared.arrays, _where(prepared)
    heldin = checked_heldin(data, params, where)
    _check_training_units(heldin["train"], params, where)
    model.bin_ms = round(prepared.attrs["bin_width_s"] * 1000, 6)
    model.gpfa = GPFA(bin_size=model.bin_ms * params["bin_factor"] * pq.ms, x_dim=params["latent_size"],
                      em_max_iters=params["em_max_iters"], em_tol=params["em_tol"])
    trains = spike_trains(heldin["train"], model.bin_ms)  # built once: neo spike trains are slow to make
    with _elephant_call():
        model.gpfa.fit(trains)
    latents = infer_latents(model, trains, heldin["train"].shape[1])
    features = latents.reshape(-1, latents.shape[-1])
    for units in ("heldin", "heldout"):
        if f"train_spikes_{units}" in data:
            targets = np.asarray(data[f"train_spikes_{units}"], dtype=np.float64)
            model.window_glms[units] = fit_poisson_glms(features, targets.reshape(-1, targets.shape[-1]), params["glm_alpha"])
        key = f"train_spikes_{units}_forward"
        if key in data:
            forward = np.asarray(data[key], dtype=np.float64)
            model.forward_glms[units] = fit_poisson_glms(
                _forward_features(latents, forward.shape[1]), forward.reshape(-1, forward.shape[-1]), params["glm_alpha"]
            )
    return model


def predict(model, prepared, params, device=None):
    """Latents and window rates of every split; forward rates of the evaluation trials."""
    data = prepared.arrays
    output = {}
    for split, counts in checked_heldin(data, params, _where(prepared)).items():
        latents = infer_latents(model, spike_trains(counts, model.bin_ms), counts.shape[1])
        features = latents.reshape(-1, latents.shape[-1])
        output[f"latents/{split}_factors"] = latents
        for units, glms in model.window_glms.items():
            output[f"{split}_rates_{units}"] = predict_poisson_glms(glms, features).reshape(*latents.shape[:2], -1)
        if split == "eval":
            for units, glms in model.forward_glms.items():
                n_forward_bins = data[f"train_spikes_{units}_forward"].shape[1]
                rates = predict_poisson_glms(glms, _forward_features(latents, n_forward_bins))
                output[f"eval_rates_{units}_forward"] = rates.reshape(len(latents), n_forward_bins, -1)
    return {key: value.astype(np.float32) for key, value in output.items()}


def _forward_features(latents, n_forward_bins):
    """The window's last-bin latents, repeated per forward bin, and a one-hot forward-bin index without its
    last column: with the GLM's intercept the full one-hot is singular when unpenalised (glm_alpha 0)."""
    return with_bin_index(latents[:, -1], n_forward_bins)[:, :-1]


def spike_trains(counts, bin_ms):
    """Trials × bins × units counts -> per trial, one neo.SpikeTrain per unit (what Elephant's GPFA takes),
    each bin's spikes at the bin's centre."""
    n_bins = counts.shape[1]
    centres = (np.arange(n_bins) + 0.5) * bin_ms
    t_stop = n_bins * bin_ms * pq.ms
    return [
        [neo.SpikeTrain(np.repeat(centres, unit), units=pq.ms, t_stop=t_stop) for unit in trial.T.astype(np.int64)]
        for trial in counts
    ]


def infer_latents(model, trains, n_bins):
    """Orthonormalised GPFA latents (trials × `n_bins` data bins × latent_size) of held-in spike `trains`."""
    with _elephant_call():
        latents = model.gpfa.transform(trains)
    latents = np.stack([np.asarray(trial, dtype=np.float64).T for trial in latents])
    factor = model.params["bin_factor"]
    if factor == 1:
        return latents
    # linear interpolation between GPFA's bin centres, held at the edges
    fine, coarse = np.arange(n_bins) + 0.5, (np.arange(n_bins // factor) + 0.5) * factor
    weights = np.stack([np.interp(fine, coarse, column) for column in np.eye(len(coarse))], axis=1)
    return np.einsum("fc,tcl->tfl", weights, latents)


def checked_heldin(data, params, where):
    """Held-in counts of every split, float64, NaN handled as `unobserved` says; an InputError (one line,
    naming the key) for what GPFA cannot take."""
    heldin = {}
    for split in (s for s in SPLITS if f"{s}_spikes_heldin" in data):
        key = f"{split}_spikes_heldin"
        counts = np.asarray(data[key], dtype=np.float64)
        unobserved = np.isnan(counts)
        if unobserved.any():
            if params["unobserved"] == "refuse":
                raise InputError(where, key, f"{unobserved.sum()} unobserved (NaN) entries; GPFA needs every bin observed"
                                             " (unobserved: zero_fill counts them as no spikes, as nlb_tools does)")
            counts = np.where(unobserved, 0.0, counts)
        silent = np.flatnonzero(counts.sum(axis=(1, 2)) == 0)
        if len(silent):
            raise InputError(where, key, f"trial(s) {_listed(silent)} have no held-in spikes at all, which GPFA would"
                                         " read as every unit far below its mean (drop them or check the recording)")
        if counts.shape[1] % params["bin_factor"]:
            raise InputError(where, key, f"{counts.shape[1]} bins per trial do not divide into GPFA bins of"
                                         f" bin_factor = {params['bin_factor']} bins")
        heldin[split] = counts
    return heldin


def _check_training_units(counts, params, where):
    """What GPFA's factor analysis needs of the training trials' held-in units."""
    key = "train_spikes_heldin"
    n_units = counts.shape[-1]
    if params["latent_size"] > n_units:
        raise InputError(where, key, f"latent_size {params['latent_size']} exceeds the {n_units} held-in units")
    flat = counts.reshape(-1, n_units)
    silent = np.flatnonzero(flat.sum(axis=0) == 0)
    if len(silent):
        raise InputError(where, key, f"held-in unit(s) {_listed(silent)} never fire in the training trials; GPFA has"
                                     " nothing to fit them from (drop them from the held-in units)")
    rank = np.linalg.matrix_rank(np.cov(np.sqrt(flat), rowvar=False))
    if rank < n_units:
        raise InputError(where, key, f"the held-in units' square-root counts span {rank} of {n_units} dimensions"
                                     " (repeated units, or too few training bins); GPFA needs them independent")


@contextmanager
def _elephant_call():
    """NumPy's global random state seeded for Elephant's segment overlaps (and restored afterwards), and two
    warnings that tell a user nothing silenced: one per trial shorter than Elephant's 20-bin segments (it
    warns once that it then uses whole trials), and quantities' deprecation of an argument Elephant passes."""
    state = np.random.get_state()
    np.random.seed(SEGMENT_SEED)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="trial corresponding to index")
            warnings.filterwarnings("ignore", category=pq.QuantitiesDeprecationWarning)
            yield
    finally:
        np.random.set_state(state)


def _where(prepared):
    """The dataset name that InputErrors name (the kind does not see the file's path)."""
    return str(prepared.attrs.get("dataset", "<data>"))


def _listed(indices, shown=5):
    more = f" and {len(indices) - shown} more" if len(indices) > shown else ""
    return f"{indices[:shown].tolist()}{more}"
