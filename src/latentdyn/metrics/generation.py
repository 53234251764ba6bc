"""The generative study (issue 19) on a dataset with withheld conditions: how a model's per-trial codes lay
out behaviour, whether moving in code space generates the trials of a condition never seen in training,
and how real its generated spikes look. Plain functions over a binned dataset's arrays and a run's codes;
the models enter only through `generate(codes) -> rates` (capability `code_generation`).

Conventions:
- A trial's reach angle is its condition's (data/subsets.py `condition_angles`: the direction of the
  condition's mean hand displacement). Its factors for DCI are cos θ, sin θ and its peak hand speed.
- "Seen" conditions have trials in the training split; withheld ones appear only in the evaluation split
  (data/subsets.py `withhold_conditions` moved them there). Trials of no condition are left out.
- Real rates: the true rates where the data has them (simulated), else spikes smoothed with a Gaussian
  of SMOOTHING_MS.
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from latentdyn.metrics.disentanglement import angle_targets, dci, linear_decoding_r2
from latentdyn.metrics.spike_realism import poisson_spikes, realism_row, split_half

SMOOTHING_MS = 40.0
DECODER_ALPHA = 1.0  # ridge penalty of the rates -> velocity decoder (inputs are rates of similar scale)
MIN_GENERATED = 20  # trials generated per withheld condition when fewer real ones exist


def window_spikes(arrays, split):
    """Held-in then held-out counts over the window: trials × bins × units."""
    parts = [arrays[f"{split}_spikes_heldin"]]
    if f"{split}_spikes_heldout" in arrays:
        parts.append(arrays[f"{split}_spikes_heldout"])
    return np.concatenate(parts, axis=-1)


def real_rates(arrays, attrs, split):
    """True rates where known, else smoothed spikes (module docstring): trials × window bins × units."""
    if f"{split}_true_rates_heldin" in arrays:
        parts = [arrays[f"{split}_true_rates_heldin"]]
        if f"{split}_true_rates_heldout" in arrays:
            parts.append(arrays[f"{split}_true_rates_heldout"])
        return np.concatenate(parts, axis=-1)
    return smoothed(window_spikes(arrays, split), attrs)


def smoothed(spikes, attrs):
    return gaussian_filter1d(spikes.astype(float), SMOOTHING_MS / (1000 * attrs["bin_width_s"]), axis=1)


def trial_factors(angles, behavior):
    """cos θ, sin θ and peak hand speed per trial: the DCI factors."""
    speed = np.linalg.norm(behavior, axis=-1).max(axis=1)
    return np.column_stack([angle_targets(angles), speed])


def disentanglement_row(codes, angles, behavior, train, test, seed=0):
    """DCI of the codes against the trial factors, and ridge decoding R² of reach angle (cos/sin) and of
    the hand-velocity time course from the codes: fitted on `train` rows, scored on `test` rows."""
    factors = trial_factors(angles, behavior)
    scores = dci(codes[train], factors[train], codes[test], factors[test], seed=seed)
    velocity = behavior.reshape(len(behavior), -1)
    return {
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": scores["informativeness"],
        "angle_r2": linear_decoding_r2(codes[train], angle_targets(angles[train]), codes[test],
                                       angle_targets(angles[test])),
        "velocity_r2": linear_decoding_r2(codes[train], velocity[train], codes[test], velocity[test]),
    }


def code_map(angles, codes):
    """Ridge map from behaviour (cos θ, sin θ) to code, fitted on seen trials: how a new condition's code
    is chosen (a linear traversal of code space, as GNOCCHI generates unseen conditions)."""
    return Ridge(alpha=1e-3).fit(angle_targets(angles), codes)


def velocity_decoder(rates, behavior):
    """Ridge decoder from rates (per bin) to hand velocity, fitted on real training trials' bins of finite
    velocity (a trial of no condition may have none)."""
    rates, behavior = rates.reshape(-1, rates.shape[-1]), behavior.reshape(-1, behavior.shape[-1])
    finite = np.isfinite(behavior).all(-1)
    return Ridge(alpha=DECODER_ALPHA).fit(rates[finite], behavior[finite])


def decode_velocity(decoder, rates):
    return decoder.predict(rates.reshape(-1, rates.shape[-1])).reshape(*rates.shape[:2], -1)


def reach_angle_error_deg(velocity, true_velocity):
    """Absolute angle (degrees) between the summed velocities (the reach's direction) of two mean trials."""
    a, b = velocity.sum(0), true_velocity.sum(0)
    difference = np.arctan2(a[1], a[0]) - np.arctan2(b[1], b[0])
    return float(np.degrees(np.abs((difference + np.pi) % (2 * np.pi) - np.pi)))


def unseen_scores(generated_rates, real_psth, real_velocity, decoder):
    """A generated condition against the real one: PSTH R² (window bins × units), and the velocity
    decoded from the generated trials' mean rates against the real mean velocity (R² over bins, angle
    error of the reach).

    Both R² are variance-weighted (1 − summed squared error / summed variance over units or velocity
    components, as NLB scores velocity): within one condition a unit or a velocity component can be
    nearly flat (a reach at 90° has almost no x velocity), and its own R², in a plain mean over
    columns, would swamp the rest (−3000 on the demo's 90° reach)."""
    psth = generated_rates.mean(0)
    decoded = decode_velocity(decoder, psth[None])[0]
    return {
        "psth_r2": float(r2_score(real_psth, psth, multioutput="variance_weighted")),
        "velocity_r2": float(r2_score(real_velocity, decoded, multioutput="variance_weighted")),
        "angle_error_deg": reach_angle_error_deg(decoded, real_velocity),
    }, decoded


def nearest_seen(angle, seen_angles):
    """Index (into `seen_angles`) of the seen condition closest in reach angle, across the wrap-around: the
    floor, reusing the nearest condition's trials."""
    gaps = np.abs((np.asarray(seen_angles) - angle + np.pi) % (2 * np.pi) - np.pi)
    return int(np.argmin(gaps))


def sampled_codes(train_codes, n, seed):
    """`n` codes from a Gaussian fitted to the training codes: both models' generated trials are drawn
    alike, whatever prior each was trained towards (GNOCCHI's MMD to N(0, I), LFADS's KL to its IC prior)."""
    rng = np.random.default_rng(seed)
    mean = train_codes.mean(0)
    covariance = np.cov(train_codes, rowvar=False) + 1e-6 * np.eye(train_codes.shape[1])
    return rng.multivariate_normal(mean, covariance, size=n)


def realism(generated_rates, real_spikes, bin_width_s, seed=0):
    """LDNS's realism scores (metrics/spike_realism.py) of Poisson spikes drawn from generated rates."""
    return realism_row(poisson_spikes(generated_rates, seed=seed), real_spikes, bin_width_s)


def real_ceiling(real_spikes, bin_width_s, seed=0):
    """The same scores between two halves of the real trials: what a perfect model could reach."""
    first, second = split_half(real_spikes, seed=seed)
    return realism_row(first, second, bin_width_s)
