"""Neural Latents Benchmark metrics, with the definitions and quirks of nlb_tools' `evaluate`.

Every definition follows nlb_tools/evaluation.py (github.com/neurallatents/nlb_tools, commit d75fc9a),
re-implemented so the workflow does not depend on nlb_tools and its pinned pandas. tests/test_nlb_metrics.py
checks the numbers against what nlb_tools gave for the reference vector in shared/reference/nlb_vectors.

Targets are the arrays of a binned dataset (docs/formats.md keys) or of `load_test_targets`; a
submission is the model-output arrays (rates in spikes per bin).
"""

import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
from scipy.special import gammaln
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from latentdyn.data.format import validate_model_output
from latentdyn.errors import InputError
from latentdyn.io import reading

# nlb_tools replaces zero rates by this before taking the log, so a zero rate under a spike is costly but finite.
ZERO_RATE_FLOOR = 1e-9
# nlb_tools' ridge grid for the velocity decoder; GridSearchCV's default 5-fold unshuffled CV picks alpha.
RIDGE_ALPHAS = np.logspace(-4, 0, 9)
DECODER_CV_FOLDS = 5
# DMFC `eval_behavior` columns (nlb_tools make_tensors PARAMS): is_eye, theta, is_short, ts, tp. Conditions for
# the tp correlation use the first three only (too few test trials per ts); tp is the last column.
DMFC_CONDITION_COLUMNS = slice(0, 3)
DMFC_TP_COLUMN = -1
NLB_BIN_SIZES_MS = (5, 20)


def poisson_nll(rates, spikes):
    """Summed Poisson negative log-likelihood, r − n·log r + log n!, over the observed (non-NaN) spikes.

    As nlb_tools' `neg_log_likelihood`: rates must be non-negative and finite (nlb_tools rejects only NaN)
    where spikes are observed, and exact zeros become 1e-9.
    """
    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(f"rates {rates.shape} and spikes {spikes.shape} must have the same shape")
    observed = ~np.isnan(spikes)
    rates, spikes = rates[observed], spikes[observed]
    if not np.all(np.isfinite(rates)):
        raise ValueError("rates must be finite where spikes are observed")
    if np.any(rates < 0):
        raise ValueError("rates must be non-negative")
    rates = np.where(rates == 0, ZERO_RATE_FLOOR, rates)
    return float(np.sum(rates - spikes * np.log(rates) + gammaln(spikes + 1.0)))


def bits_per_spike(rates, spikes):
    """Log-likelihood gain over a per-neuron constant rate, in bits per observed spike (co-bps).

    The null rate is each neuron's nanmean over trials × time of the evaluated spikes themselves
    (nlb_tools' quirk: the null model sees the test data). NaN when no spike is observed.
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    total_spikes = np.nansum(spikes)
    if total_spikes == 0:
        return float("nan")
    with warnings.catch_warnings():
        # A neuron never observed has a NaN null rate, but poisson_nll skips all its entries.
        warnings.simplefilter("ignore", RuntimeWarning)
        neuron_means = np.nanmean(spikes, axis=tuple(range(spikes.ndim - 1)), keepdims=True)
    null_rates = np.broadcast_to(neuron_means, spikes.shape)
    return float((poisson_nll(null_rates, spikes) - poisson_nll(rates, spikes)) / total_spikes / np.log(2))


def forward_bits_per_spike(rates_heldin, spikes_heldin, rates_heldout=None, spikes_heldout=None):
    """fp-bps: bits per spike of the forward-window predictions, held-in and held-out units together."""
    rates, spikes = [rates_heldin], [spikes_heldin]
    if spikes_heldout is not None:
        rates.append(rates_heldout)
        spikes.append(spikes_heldout)
    return bits_per_spike(np.concatenate(rates, axis=-1), np.concatenate(spikes, axis=-1))


def velocity_r2(train_rates, train_behavior, eval_rates, eval_behavior, decode_masks=None):
    """R² of a ridge decoder from rates to behaviour, fit on train trials and scored on eval trials.

    As nlb_tools' `velocity_decoding`: raw rates (no log, sqrt or z-scoring; the caller concatenates
    held-in and held-out units), trials × time flattened into rows, rows whose first behaviour column is
    NaN dropped, `GridSearchCV(Ridge(), alpha=logspace(-4, 0, 9))` with 5 unshuffled folds, R² averaged
    uniformly over behaviour dimensions. `decode_masks` is None (one decoder on all trials) or a pair
    (train_mask, eval_mask), each trials × decoders (nlb_tools' layout) or trials × bins × decoders;
    Area2_Bump uses one decoder per mask column and the R² values are averaged.
    """
    train_rates, train_behavior, eval_rates, eval_behavior = (
        np.asarray(array, dtype=np.float64) for array in (train_rates, train_behavior, eval_rates, eval_behavior)
    )
    if decode_masks is None:
        decode_masks = (np.ones((len(train_rates), 1), bool), np.ones((len(eval_rates), 1), bool))
    train_rows = _mask_rows(decode_masks[0], train_rates.shape[1])
    eval_rows = _mask_rows(decode_masks[1], eval_rates.shape[1])
    if train_rows.shape[1] != eval_rows.shape[1]:
        raise ValueError("train and eval decode masks must have the same number of decoders")
    train_x, train_y = _flatten_time(train_rates), _flatten_time(train_behavior)
    eval_x, eval_y = _flatten_time(eval_rates), _flatten_time(eval_behavior)
    scores = [
        _fit_and_score_decoder(train_x[train_in], train_y[train_in], eval_x[eval_in], eval_y[eval_in])
        for train_in, eval_in in zip(train_rows.T, eval_rows.T)
    ]
    return float(np.mean(scores))


def psth_r2(eval_rates, psth, eval_cond_idx, eval_jitter=None):
    """R² between the true PSTHs and the condition-averaged eval rates, averaged over neurons.

    As nlb_tools' `eval_psth`: conditions with no eval trial are skipped, bins where a PSTH is NaN are
    left out, the remaining condition × time rows are stacked and scored with `r2_score`.
    `eval_jitter` (bins per eval trial, DMFC) shifts each trial's rates back before averaging.
    """
    eval_rates = np.asarray(eval_rates, dtype=np.float64)
    psth = np.asarray(psth, dtype=np.float64)
    if eval_jitter is None:
        eval_jitter = np.zeros(len(eval_rates), dtype=int)
    true_rows, predicted_rows = [], []
    for condition, trials in enumerate(eval_cond_idx):
        if len(trials) == 0:
            continue
        predicted = np.mean([_shift_bins(eval_rates[trial], int(eval_jitter[trial])) for trial in trials], axis=0)
        timed = ~np.isnan(psth[condition, :, 0])
        if np.any(np.isnan(predicted[timed])):
            raise ValueError(f"NaN rates inside the PSTH window of condition {condition}")
        true_rows.append(psth[condition][timed])
        predicted_rows.append(predicted[timed])
    return float(r2_score(np.vstack(true_rows), np.vstack(predicted_rows)))


def tp_correlation(eval_rates, set_go_mask, conditions, tp):
    """DMFC_RSG: Pearson r between neural speed and produced interval tp, averaged over conditions.

    As nlb_tools' `speed_tp_correlation`: a trial's speed is the mean norm of the bin-to-bin change of its
    rates (all units) over its set–go bins (`set_go_mask`, trials × bins; nlb_tools takes the bins where
    eval_spikes_heldout is not NaN). `conditions` (trials × k) groups trials; all-NaN rows (outlier trials)
    belong to no condition. The mean is nlb_tools' current choice (early versions took the median).
    """
    eval_rates = np.asarray(eval_rates, dtype=np.float64)
    conditions = np.asarray(conditions, dtype=np.float64)
    tp = np.asarray(tp, dtype=np.float64)
    speeds = np.array(
        [
            np.mean(np.linalg.norm(np.diff(trial[in_window], axis=0), axis=1))
            for trial, in_window in zip(eval_rates, set_go_mask)
        ]
    )
    unique_conditions = np.unique(conditions, axis=0)
    unique_conditions = unique_conditions[~np.all(np.isnan(unique_conditions), axis=1)]
    correlations = []
    for condition in unique_conditions:
        members = np.all(conditions == condition, axis=1)
        correlations.append(pearsonr(speeds[members], tp[members])[0])
    return float(np.mean(correlations))


def evaluate_submission(targets, submission, dataset_name, *, submission_path="submission"):
    """Score one dataset's submission as nlb_tools' `evaluate` does; returns the metrics that apply.

    Keys as nlb_tools names them: "co-bps" (needs eval_spikes_heldout), "vel R2" (train/eval behaviour,
    not DMFC; Area2 decode masks if the targets have them), "tp corr" (DMFC, `eval_behavior` in nlb_tools'
    trials × [is_eye, theta, is_short, ts, tp] layout), "psth R2" (psth and eval_cond_idx; optional
    eval_jitter), "fp-bps" (forward spikes). The submission is checked by `validate_model_output`; a rates
    key a computable metric needs must be there (InputError naming `submission_path` and the key). A metric
    whose targets are missing or do not fit is skipped with one line on stderr saying why.
    """
    validate_model_output(submission, targets, submission_path)

    def rates(key):
        if key not in submission:
            raise InputError(submission_path, key, "missing from the submission; the dataset's metrics need it")
        return np.asarray(submission[key], dtype=np.float64)

    def all_units(split):
        """Held-in and held-out rates side by side (held-out required when the targets score them)."""
        keys = [f"{split}_rates_heldin"]
        if has_heldout or f"{split}_rates_heldout" in submission:
            keys.append(f"{split}_rates_heldout")
        return np.concatenate([rates(key) for key in keys], axis=-1)

    def skip(metric, reason):
        print(f"{dataset_name}: {metric} not computed: {reason}", file=sys.stderr, flush=True)

    has_heldout = "eval_spikes_heldout" in targets
    is_dmfc = dataset_name.startswith("dmfc_rsg")
    eval_rates = all_units("eval")
    metrics = {}
    if has_heldout:
        metrics["co-bps"] = bits_per_spike(rates("eval_rates_heldout"), targets["eval_spikes_heldout"])
    else:
        skip("co-bps", "the dataset has no eval_spikes_heldout")
    if is_dmfc:
        if has_heldout and "eval_behavior" in targets:
            eval_behavior = np.asarray(targets["eval_behavior"], dtype=np.float64)
            metrics["tp corr"] = tp_correlation(
                eval_rates,
                ~np.isnan(targets["eval_spikes_heldout"][..., 0]),
                eval_behavior[:, DMFC_CONDITION_COLUMNS],
                eval_behavior[:, DMFC_TP_COLUMN],
            )
        else:
            skip("tp corr", "needs eval_spikes_heldout and eval_behavior")
    elif "train_behavior" not in targets or "eval_behavior" not in targets:
        skip("vel R2", "the dataset has no train_behavior and eval_behavior")
    else:
        train_rates = all_units("train")
        if train_rates.shape[-1] != eval_rates.shape[-1]:
            skip("vel R2", f"train rates cover {train_rates.shape[-1]} units, eval rates {eval_rates.shape[-1]}")
        elif not _has_behavior_rows(targets["train_behavior"]) or not _has_behavior_rows(targets["eval_behavior"]):
            skip("vel R2", "train_behavior or eval_behavior has no observed bin")
        else:
            decode_masks = None
            if "train_decode_mask" in targets:
                decode_masks = (targets["train_decode_mask"], targets["eval_decode_mask"])
            metrics["vel R2"] = velocity_r2(
                train_rates, targets["train_behavior"], eval_rates, targets["eval_behavior"], decode_masks
            )
    if "psth" not in targets or "eval_cond_idx" not in targets:
        skip("psth R2", "the dataset has no psth and eval_cond_idx")
    elif np.shape(targets["psth"])[-1] != eval_rates.shape[-1]:
        skip("psth R2", f"the PSTH has {np.shape(targets['psth'])[-1]} units, the eval rates {eval_rates.shape[-1]}")
    elif not any(len(trials) for trials in targets["eval_cond_idx"]):
        skip("psth R2", "no condition has an eval trial")
    else:
        metrics["psth R2"] = psth_r2(eval_rates, targets["psth"], targets["eval_cond_idx"], targets.get("eval_jitter"))
    if "eval_spikes_heldin_forward" in targets:
        has_heldout_forward = "eval_spikes_heldout_forward" in targets
        metrics["fp-bps"] = forward_bits_per_spike(
            rates("eval_rates_heldin_forward"),
            targets["eval_spikes_heldin_forward"],
            rates("eval_rates_heldout_forward") if has_heldout_forward else None,
            targets["eval_spikes_heldout_forward"] if has_heldout_forward else None,
        )
    else:
        skip("fp-bps", "the dataset has no eval_spikes_heldin_forward")
    return metrics


def nlb_group_name(dataset_name, bin_ms):
    """nlb_tools' name of a dataset at a bin size, in its target files and submissions: `<dataset>` at
    5 ms, `<dataset>_<bin>` otherwise (`mc_maze_20`)."""
    return dataset_name if bin_ms == 5 else f"{dataset_name}_{bin_ms}"


def load_test_targets(path, dataset_name, bin_ms):
    """Read one dataset's test-phase targets from nlb_tools' public `data/eval_data_test.h5`.

    nlb_tools writes that file with `make_eval_target_tensors` + `save_to_h5` and reads it in `evaluate`:
    one group per dataset and bin size, `<dataset>` for 5 ms and `<dataset>_<bin>` otherwise
    (`mc_maze_20`), holding eval_spikes_heldout, train/eval_behavior, eval_spikes_{heldin,heldout}_forward,
    and where they apply train/eval_decode_mask, psth, train/eval_cond_idx (variable-length integer
    arrays, one per condition) and train/eval_jitter. Keys match the binned dataset's, so the returned
    dict goes straight to `evaluate_submission`; `train_behavior` covers the test phase's training trials
    (train + val splits).
    """
    path = Path(path)
    if bin_ms not in NLB_BIN_SIZES_MS:
        raise InputError(path, "bin_ms", f"NLB targets exist for bin sizes {NLB_BIN_SIZES_MS} ms, not {bin_ms}")
    if not path.exists():
        raise InputError(path, "<file>", "test targets file does not exist (nlb_tools' data/eval_data_test.h5)")
    if not h5py.is_hdf5(path):
        raise InputError(
            path, "<file>", "not an HDF5 file (a Git LFS pointer? fetch the real file with `git lfs pull`)"
        )
    group_name = nlb_group_name(dataset_name, bin_ms)
    with reading(path, "test targets file"), h5py.File(path, "r") as f:
        if group_name not in f:
            raise InputError(path, group_name, f"no such group; the file has {sorted(f.keys())}")
        targets = {}
        for key, node in f[group_name].items():
            value = node[()]
            targets[key] = (
                [np.asarray(trials, dtype=np.int64) for trials in value] if key.endswith("_cond_idx") else value
            )
    if "eval_spikes_heldout" not in targets:
        raise InputError(path, f"{group_name}/eval_spikes_heldout", "missing from the test targets")
    return targets


def _has_behavior_rows(behavior):
    """Whether any bin has behaviour (the decoder drops rows whose first column is NaN)."""
    return bool(np.any(~np.isnan(np.asarray(behavior, dtype=np.float64)[..., 0])))


def _flatten_time(array):
    return array.reshape(-1, array.shape[-1])


def _mask_rows(mask, n_bins):
    """Decoder masks as rows of the trials×bins-flattened arrays (a per-trial mask covers all its bins)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        mask = np.repeat(mask[:, None, :], n_bins, axis=1)
    return mask.reshape(-1, mask.shape[-1])


def _fit_and_score_decoder(train_x, train_y, eval_x, eval_y):
    train_kept, eval_kept = ~np.isnan(train_y[:, 0]), ~np.isnan(eval_y[:, 0])
    train_x, train_y, eval_x, eval_y = train_x[train_kept], train_y[train_kept], eval_x[eval_kept], eval_y[eval_kept]
    if np.any(np.isnan(train_x)) or np.any(np.isnan(eval_x)):
        raise ValueError("NaN rates in bins that have behaviour")
    decoder = GridSearchCV(Ridge(), {"alpha": RIDGE_ALPHAS}, cv=DECODER_CV_FOLDS)
    decoder.fit(train_x, train_y)
    return decoder.score(eval_x, eval_y)


def _shift_bins(trial_rates, shift):
    """Delay a trial's rates by `shift` bins (advance if negative), NaN-filled, as nlb_tools undoes jitter."""
    shifted = np.full_like(trial_rates, np.nan)
    if shift >= 0:
        shifted[shift:] = trial_rates[: len(trial_rates) - shift]
    else:
        shifted[:shift] = trial_rates[-shift:]
    return shifted
