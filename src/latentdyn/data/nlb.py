"""NWB files -> binned tensors (docs/formats.md) that mean exactly what nlb_tools gives.

Follows neurallatents/nlb_tools `nlb_tools/make_tensors.py` (`make_train_input_tensors`,
`make_eval_input_tensors`, `make_eval_target_tensors`, `_make_psth`, `_prep_jitter`) and
`nlb_tools/nwb_interface.py` (`make_trial_data`, `resample`, `smooth_spk`), but works on numpy
arrays of the binned timeline instead of a per-ms DataFrame of every signal. Where nlb_tools would
fail (ragged trials, missing rows) we pad with NaN instead.
"""

import logging
from dataclasses import asdict, dataclass

import h5py
import numpy as np
import pandas as pd
from scipy import signal

from latentdyn.data.nlb_specs import DatasetSpec
from latentdyn.data.nwb_reader import NS_PER_MS, read_recording
from latentdyn.errors import InputError
from latentdyn.io import reading

log = logging.getLogger(__name__)

PHASES = ("val", "test")
WINDOW_END_EXCLUSION_NS = 1_000  # make_trial_data ends windows 1 us early so `.loc` excludes the end
SHORT_TRIAL_FRACTION = 0.8  # _make_psth drops trials shorter than this fraction of the mean length
TRUTH_CHUNK_ROWS = 200_000
SPIKE_CHUNK = 65_536  # spikes smoothed at once (bounds memory to ~150 MB)


@dataclass(frozen=True)
class WindowBins:
    """Each selected trial's window on the binned timeline."""

    first: np.ndarray  # first bin
    count: np.ndarray  # bins in the window after any cut (0 if the trial has no window)
    align_offset: np.ndarray  # first bin minus the alignment bin (nlb `align_time` in bins)


@dataclass(frozen=True)
class TrialSlices:
    """Which timeline bins fill each row of a (trials, length) tensor, and where."""

    source: np.ndarray
    dest: np.ndarray
    count: np.ndarray
    length: int


def make_binned_tensors(nwb_paths, spec: DatasetSpec, bin_ms: int, phase: str, truth_path=None):
    """Bin NWB files into the binned-dataset arrays and root attributes of docs/formats.md.

    'val' phase: train = 'train' split, eval = 'val' split, with every evaluation target.
    'test' phase: train = 'train'+'val', eval = 'test'; eval targets (held-out spikes, behaviour,
    forward spikes, PSTH, condition indices, decode masks) are hidden there and left out.
    `truth_path`: optional simulator sidecar (timestamps, rates in Hz, latents) on the same clock.
    Several files lie on one timeline in file-name order, so `*_trial_ids` count rows in that order.
    Shapes follow docs/formats.md except DMFC's behaviour, which is (trials, 5) trial fields as in NLB.
    """
    if phase not in PHASES:
        raise InputError("<phase>", "phase", f"'{phase}' is not one of {PHASES}")
    _check_bin_size(spec, bin_ms)
    rec = read_recording(nwb_paths)
    _require_trial_fields(rec, spec)
    n_bins = -(-rec.n_ms // bin_ms)
    log.info("read %d trials, %d+%d units, %.1f s from %s", len(rec.trials), len(rec.heldin.unit_ids),
             0 if rec.heldout is None else len(rec.heldout.unit_ids), rec.n_ms / 1000,
             ", ".join(map(str, rec.paths)))
    train, evaluation = (_Split(rec, spec, rows, bin_ms, n_bins) for rows in _split_rows(rec, phase))
    for name, split in (("train", train), ("eval", evaluation)):
        if not len(split.rows):
            raise InputError(rec.paths[0], spec.window.align_field,
                             f"no {name} trial has a model-input window with data (alignment missing or outside"
                             " the recording); nothing to bin")
    with_targets = phase == "val"
    arrays = {"train_trial_ids": train.rows, "eval_trial_ids": evaluation.rows}

    for group_name, group in (("heldin", rec.heldin), ("heldout", rec.heldout)):
        if group is None:
            continue
        counts, observed = group.binned_counts(bin_ms, n_bins)
        arrays[f"train_spikes_{group_name}"] = _gather(counts, train.main, observed)
        arrays[f"train_spikes_{group_name}_forward"] = _gather(counts, train.forward, observed)
        if group_name == "heldin":
            arrays["eval_spikes_heldin"] = _gather(counts, evaluation.main, observed)
        if with_targets:
            if group_name == "heldout":
                arrays["eval_spikes_heldout"] = _gather(counts, evaluation.target, observed)
            arrays[f"eval_spikes_{group_name}_forward"] = _gather(counts, evaluation.target_forward,
                                                                  observed)
        log.info("binned %s spikes at %d ms", group_name, bin_ms)
    del counts  # the last group's counts; behaviour is read next

    behavior_names = []
    if spec.behavior_fields:
        splits = (("train", train), ("eval", evaluation)) if with_targets else (("train", train),)
        behavior_names = _add_behavior(arrays, rec, spec, bin_ms, splits)
    if spec.decode_mask_field:
        splits = (("train", train), ("eval", evaluation)) if with_targets else (("train", train),)
        for split_name, split in splits:
            arrays[f"{split_name}_decode_mask"] = _decode_mask(rec, spec, split)
    if with_targets and spec.condition_fields:
        ignored = ~np.isin(np.arange(len(rec.trials)), np.concatenate([train.in_split, evaluation.in_split]))
        arrays["psth"], arrays["train_cond_idx"], arrays["eval_cond_idx"], conditions = _psth(
            rec, spec, bin_ms, n_bins, train.rows, evaluation.rows, ignored)
        log.info("made PSTHs of %d conditions", len(arrays["psth"]))
    if truth_path is not None:
        _add_truth(arrays, truth_path, rec, bin_ms, n_bins, (("train", train), ("eval", evaluation)))

    attrs = {
        "dataset": spec.name,
        "bin_width_s": bin_ms / 1000,
        "phase": phase,
        "source": ", ".join(str(p) for p in rec.paths),
        "unit_ids_heldin": rec.heldin.unit_ids.tolist(),
        "unit_ids_heldout": [] if rec.heldout is None else rec.heldout.unit_ids.tolist(),
        "spec": asdict(spec),
    }
    if behavior_names:
        attrs["behavior_names"] = behavior_names
    if with_targets and spec.condition_fields:
        attrs["conditions"] = conditions
    return arrays, attrs


class _Split:
    """One split's trials and the slices of each window kind (input, forward, target)."""

    def __init__(self, rec, spec, in_split, bin_ms, n_bins):
        self.in_split = in_split
        jitter = _jitter_ms(rec, spec, in_split, bin_ms) if spec.jitter else None
        main = _window_bins(rec, in_split, spec.window, bin_ms, n_bins, jitter)
        keep = main.count > 0  # make_trial_data yields no rows for a trial without alignment or data
        self.rows = in_split[keep]
        self.jitter_ms = None if jitter is None else jitter[keep]

        def slices(window, lag_ms=None):
            chosen = window if lag_ms is None else window.lagged(lag_ms)
            located = _subset(_window_bins(rec, in_split, chosen, bin_ms, n_bins, jitter), keep)
            return _place(located, window.length_bins(bin_ms), window.pad,
                         self.jitter_ms if window.offsets_ms is None else None, bin_ms)

        self.main = slices(spec.window)
        self.forward = slices(spec.window.forward(spec.forward_ms))
        self.target = slices(spec.target_window)
        self.target_forward = slices(spec.target_window.forward(spec.forward_ms))
        if spec.behavior_fields and not spec.behavior_from_trials:
            self.behavior = slices(spec.target_window, spec.behavior_lag_ms)


def _window_bins(rec, rows, window, bin_ms, n_bins, jitter_ms=None):
    """Locate trial windows on the binned timeline exactly as `NWBDataset.make_trial_data` does.

    `rows` are the selected trials (nlb's `ignored_trials` is everything else): a window is cut where
    the next selected trial's window starts, or the trial after that starts, whichever is first.
    Times are integer ns, as nlb_tools' timedeltas. Jitter (ms) moves the alignment.
    """
    bin_ns = bin_ms * NS_PER_MS
    align, has_align = (a[rows] for a in rec.trial_time_ns(window.align_field))
    trial_start, has_start = (a[rows] for a in rec.trial_time_ns(window.start_field))
    start_time, has_start_time = rec.trial_time_ns("start_time")
    next_start = np.append(start_time[1:], 0)[rows]
    has_next_start = np.append(has_start_time[1:], False)[rows]
    if jitter_ms is not None:
        align = align + np.round(jitter_ms * NS_PER_MS).astype(np.int64)
    if window.offsets_ms is not None:
        win_start = align + window.offsets_ms[0] * NS_PER_MS
        win_end = align + window.offsets_ms[1] * NS_PER_MS - WINDOW_END_EXCLUSION_NS
        valid = has_align & has_start
    else:
        trial_end, has_end = (a[rows] for a in rec.trial_time_ns(window.end_field))
        win_start, win_end = trial_start, trial_end - WINDOW_END_EXCLUSION_NS
        valid = has_align & has_start & has_end
    endpoint = win_end.copy()
    if not window.allow_overlap:
        kept = np.flatnonzero(valid)
        following = kept[1:]
        bound = np.where(has_next_start[following], np.minimum(next_start[following], win_start[following]),
                         win_start[following])
        cut = win_end[kept[:-1]] > bound
        endpoint[kept[:-1][cut]] = bound[cut] - WINDOW_END_EXCLUSION_NS
    first = np.maximum(-(-win_start // bin_ns), 0)
    last = np.minimum(endpoint // bin_ns, n_bins - 1)
    count = np.where(valid, np.maximum(last - first + 1, 0), 0)
    return WindowBins(first, count, first + (align // -bin_ns))


def _subset(bins, keep):
    return WindowBins(bins.first[keep], bins.count[keep], bins.align_offset[keep])


def _place(bins, length, pad="back", jitter_ms=None, bin_ms=1):
    """Fit windows into rows of `length` bins as `make_jagged_array` does: NaN-pad at the `pad` end,
    and shift by the jitter (in bins) for windows not aligned by offsets."""
    shift = np.zeros_like(bins.count) if jitter_ms is None else np.round(jitter_ms / bin_ms).astype(np.int64)
    if pad == "back":
        count = np.clip(bins.count - shift, 0, length)
        return TrialSlices(bins.first + shift, np.zeros_like(count), count, length)
    count = np.clip(np.minimum(bins.count, length - shift), 0, None)
    return TrialSlices(bins.first + bins.count - count, length - shift - count, count, length)


def _gather(values, slices, observed=None):
    """(trials, length, channels) float32 from timeline rows; NaN outside windows or where unobserved."""
    positions = np.arange(slices.length)
    inside = (positions >= slices.dest[:, None]) & (positions < (slices.dest + slices.count)[:, None])
    index = np.where(inside, slices.source[:, None] + positions - slices.dest[:, None], 0)
    out = values[index].astype(np.float32)
    missing = ~inside if observed is None else ~inside | ~observed[index]
    out[missing] = np.nan
    return out


def _split_rows(rec, phase):
    """Trial rows of the train and eval splits ('val': train/val, 'test': train+val/test)."""
    split = rec.trials["split"].astype(str).to_numpy()
    train = np.isin(split, ["train"] if phase == "val" else ["train", "val"])
    evaluation = split == ("val" if phase == "val" else "test")
    for name, mask in (("train", train), ("eval", evaluation)):
        if not mask.any():
            raise InputError(rec.paths[0], "split", f"no trials for the {name} set of phase '{phase}'")
    return np.flatnonzero(train), np.flatnonzero(evaluation)


def _jitter_ms(rec, spec, rows, bin_ms):
    """`make_tensors._prep_jitter` with DMFC's range: one draw per trial of the split, seeded."""
    jitter = spec.jitter
    tp = pd.to_numeric(rec.trials[jitter.field], errors="coerce").to_numpy(dtype=np.float64)[rows]
    is_test = rec.trials["split"].astype(str).to_numpy()[rows] == "test"
    upper = np.where(is_test, 0.0, np.clip(jitter.span_ms - tp, 0.0, jitter.max_ms))
    upper_bins = np.floor(np.round(upper / bin_ms, 4))
    draws = np.random.RandomState(jitter.seed).random_sample(len(rows))
    # a trial without tp gets no jitter (nlb_tools would drop it for a NaN alignment)
    return np.nan_to_num(np.round(draws * upper_bins)) * bin_ms


def _add_behavior(arrays, rec, spec, bin_ms, splits):
    """Lagged behaviour per split, one continuous signal at a time; returns the channel names."""
    if spec.behavior_from_trials:
        fields = list(spec.behavior_fields)
        for split_name, split in splits:
            values = rec.trials[fields].iloc[split.rows].apply(pd.to_numeric, errors="coerce")
            values = values.to_numpy(dtype=np.float64)
            if spec.outlier_field:
                values[_trial_values(rec, spec.outlier_field, split.rows) != 0] = np.nan
            arrays[f"{split_name}_behavior"] = values.astype(np.float32)
        return fields
    names, parts = [], {split_name: [] for split_name, _ in splits}
    for field in spec.behavior_fields:
        values, channels = rec.signal_ms(field)
        binned = _decimate(values, bin_ms)
        del values
        for split_name, split in splits:
            parts[split_name].append(_gather(binned, split.behavior))
        names += [f"{field}_{channel}" for channel in channels]
        log.info("binned behaviour %s", field)
    for split_name, split_parts in parts.items():
        arrays[f"{split_name}_behavior"] = np.concatenate(split_parts, axis=-1)
    return names


def _decimate(values, bin_ms):
    """`NWBDataset.resample` for continuous signals: interpolate over NaN, FIR-decimate (scipy
    `decimate`, n=500), then NaN again where a bin's first sample was NaN."""
    if bin_ms == 1:
        return values
    nan_at_bin = np.isnan(values[::bin_ms])
    for column in values.T:
        missing = np.isnan(column)
        if missing.any() and not missing.all():
            column[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(~missing), column[~missing])
    binned = signal.decimate(values, bin_ms, axis=0, n=500, ftype="fir")
    binned[nan_at_bin] = np.nan
    return binned


def _decode_mask(rec, spec, split):
    """Area2: which bins each of the two decoders (field == 0, field == 1) uses."""
    values = _trial_values(rec, spec.decode_mask_field, split.rows)
    per_trial = np.stack([values == 0, values == 1], axis=-1)
    return np.repeat(per_trial[:, None, :], split.main.length, axis=1)


def _trial_values(rec, field, rows):
    return pd.to_numeric(rec.trials[field], errors="coerce").to_numpy(dtype=np.float64)[rows]


def _psth(rec, spec, bin_ms, n_bins, train_rows, eval_rows, ignored):
    """`make_tensors._make_psth`: per condition, the mean over its trials (train and eval) of spikes
    smoothed at 1 ms and summed into bins, by time from the alignment; trials shorter than 0.8 of
    the condition's mean are dropped. Returns psth, the train/eval trial indices per condition and each
    condition's name ("field=value, ..."), by which sessions binned apart are matched (data/stitch.py)."""
    window = spec.psth_window
    fields = list(spec.condition_fields)
    skipped = np.zeros(len(rec.trials), dtype=bool)
    if spec.outlier_field:
        skipped = _trial_values(rec, spec.outlier_field, slice(None)) == 1
    table = rec.trials[fields]
    combos = sorted(set(table[~ignored].dropna().itertuples(index=False, name=None)))
    cond_bins, train_idx, eval_idx, names = [], [], [], []
    for combo in combos:
        in_combo = np.all([table[f].to_numpy() == value for f, value in zip(fields, combo)], axis=0)
        rows = np.flatnonzero(in_combo & ~ignored & ~skipped)
        if len(rows) == 0:
            continue
        bins = _window_bins(rec, rows, window, bin_ms, n_bins)
        present = bins.count > 0
        if not present.any():
            continue
        keep = present & (bins.count >= SHORT_TRIAL_FRACTION * bins.count[present].mean())
        cond_bins.append(_subset(bins, keep))
        names.append(", ".join(f"{f}={value}" for f, value in zip(fields, combo)))
        train_idx.append(np.flatnonzero(np.isin(train_rows, rows[keep])))
        eval_idx.append(np.flatnonzero(np.isin(eval_rows, rows[keep])))

    if not cond_bins:
        raise InputError(rec.paths[0], fields[0], "no condition has a trial with data; needed for PSTHs")
    sample_bin, sample_group, group_rows = _psth_samples(cond_bins, window.pad)
    n_groups = sum(len(r) for r in group_rows)
    units = [(g, c) for g in (rec.heldin, rec.heldout) if g is not None for c in range(len(g.unit_ids))]
    means = np.empty((n_groups, len(units)))
    kernel = _gaussian_kernel(spec.psth_sigma_ms)
    for column, (group, unit) in enumerate(units):
        smoothed = smoothed_bin_sums(group.spikes_ms[unit], group.observed_ms, kernel, bin_ms, n_bins)
        values = smoothed[sample_bin]
        seen = ~np.isnan(values)
        sums = np.bincount(sample_group, weights=np.where(seen, values, 0.0), minlength=n_groups)
        counts = np.bincount(sample_group, weights=seen, minlength=n_groups)
        means[:, column] = np.divide(sums, counts, out=np.full(n_groups, np.nan), where=counts > 0)

    length = window.length_bins(bin_ms) if window.length_ms else max(len(r) for r in group_rows)
    psth = np.full((len(group_rows), length, len(units)), np.nan, dtype=np.float32)
    start = 0
    for index, offsets in enumerate(group_rows):
        block = means[start:start + len(offsets)]
        start += len(offsets)
        block = block[:length] if window.pad == "back" else block[-length:]
        position = 0 if window.pad == "back" else length - len(block)
        psth[index, position:position + len(block)] = block
    return psth, train_idx, eval_idx, names


def _psth_samples(cond_bins, pad):
    """Flatten every condition's trial bins into (timeline bin, output row) pairs. Rows are the
    condition's distinct times from alignment, sorted, cut to its shortest trial at the `pad` end."""
    sample_bin, sample_group, group_rows = [], [], []
    base = 0
    for bins in cond_bins:
        steps = [np.arange(n) for n in bins.count]
        timeline = np.concatenate([f + s for f, s in zip(bins.first, steps)])
        offsets = np.concatenate([a + s for a, s in zip(bins.align_offset, steps)])
        distinct = np.unique(offsets)
        shortest = bins.count.min()
        chosen = distinct[:shortest] if pad == "back" else distinct[-shortest:]
        used = np.isin(offsets, chosen)
        sample_bin.append(timeline[used])
        sample_group.append(base + np.searchsorted(chosen, offsets[used]))
        group_rows.append(chosen)
        base += len(chosen)
    return np.concatenate(sample_bin), np.concatenate(sample_group), group_rows


def _gaussian_kernel(sigma_ms):
    """`smooth_spk`'s kernel at 1 ms: a symmetric Gaussian window of int(6 sigma) samples, summing to 1."""
    kernel = signal.windows.gaussian(int(6 * sigma_ms), sigma_ms, sym=True)
    return kernel / kernel.sum()


def smoothed_bin_sums(spikes_ms, observed_ms, kernel, bin_ms, n_bins):
    """Spikes smoothed at 1 ms, summed per bin: what `smooth_spk(ignore_nans=True)` then `resample`
    give (each observed stretch convolved on its own, scipy 'same' alignment
    out[t] = sum_s x[s] kernel[t - s + (len - 1) // 2]; NaN where a bin's first ms is unobserved),
    computed per spike from the kernel's cumulative sum instead of on a per-ms array."""
    size = len(kernel)
    cumulative = np.concatenate([[0.0], np.cumsum(kernel)])
    edges = np.flatnonzero(np.diff(np.concatenate([[False], observed_ms, [False]]).astype(np.int8)))
    run_starts, run_ends = edges[::2], edges[1::2]
    run = np.searchsorted(run_starts, spikes_ms, side="right") - 1
    kernel_first = spikes_ms - (size - 1) // 2  # first ms the spike's kernel reaches
    first_ms = np.maximum(kernel_first, run_starts[run])  # ... within its observed stretch
    last_ms = np.minimum(kernel_first + size, run_ends[run]) - 1
    clipped = (first_ms > kernel_first) | (last_ms < kernel_first + size - 1)
    steps = np.arange((size + 2 * bin_ms - 2) // bin_ms)  # most bins one kernel touches
    # a whole kernel gives bins weights that depend only on where it starts within a bin
    start_in_bin = np.arange(bin_ms)[:, None]
    table = (cumulative[np.clip((steps + 1) * bin_ms - start_in_bin, 0, size)]
             - cumulative[np.clip(steps * bin_ms - start_in_bin, 0, size)])
    sums = np.zeros(n_bins)
    for chunk in range(0, len(spikes_ms), SPIKE_CHUNK):
        part = slice(chunk, chunk + SPIKE_CHUNK)
        whole = kernel_first[part][~clipped[part]]
        whole_bins = (whole // bin_ms)[:, None] + steps
        # a kernel cut at its stretch's edge: sum it over each bin's part inside the stretch
        cut_first = kernel_first[part][clipped[part], None]
        cut_from, cut_to = first_ms[part][clipped[part], None], last_ms[part][clipped[part], None]
        cut_bins = cut_from // bin_ms + steps
        kernel_from = np.maximum(cut_bins * bin_ms, cut_from) - cut_first
        kernel_to = np.minimum((cut_bins + 1) * bin_ms - 1, cut_to) - cut_first + 1
        live = kernel_to > kernel_from
        whole_sums = np.bincount(whole_bins.ravel(), weights=table[whole % bin_ms].ravel(), minlength=n_bins)
        sums += whole_sums[:n_bins]
        np.add.at(sums, cut_bins[live], cumulative[kernel_to[live]] - cumulative[kernel_from[live]])
    sums[~observed_ms[::bin_ms]] = np.nan
    return sums


def _add_truth(arrays, truth_path, rec, bin_ms, n_bins, splits):
    """True rates (expected spikes per bin) and latents (bin means) on the input windows."""
    if len(rec.paths) != 1:
        raise InputError(truth_path, "timestamps", "ground truth needs exactly one NWB file on its clock")
    rates, latents = _binned_truth(truth_path, rec, bin_ms, n_bins)
    n_units = len(rec.heldin.unit_ids) + (0 if rec.heldout is None else len(rec.heldout.unit_ids))
    if rates.shape[1] != n_units:
        raise InputError(truth_path, "rates", f"has {rates.shape[1]} units but the NWB file has {n_units}")
    rates *= bin_ms / 1000
    for split_name, split in splits:
        for group_name, group in (("heldin", rec.heldin), ("heldout", rec.heldout)):
            if group is not None:
                columns = [rows[0] for rows in group.file_rows]
                arrays[f"{split_name}_true_rates_{group_name}"] = _gather(rates[:, columns], split.main)
        arrays[f"{split_name}_true_latents"] = _gather(latents, split.main)
    log.info("binned ground truth from %s", truth_path)


def _binned_truth(truth_path, rec, bin_ms, n_bins):
    """Mean of the 1 kHz truth over each bin (NaN for bins without samples), read in row chunks."""
    with reading(truth_path, "ground-truth file"), h5py.File(truth_path, "r") as f:
        for key in ("timestamps", "rates", "latents"):
            if key not in f:
                raise InputError(truth_path, key, "missing from the ground-truth file")
        samples = np.round(f["timestamps"][()] * 1000).astype(np.int64)
        inside = (samples >= 0) & (samples < rec.n_ms)
        bins = samples // bin_ms
        counts = np.bincount(bins[inside], minlength=n_bins)
        means = []
        for key in ("rates", "latents"):
            dataset = f[key]
            if dataset.ndim != 2 or dataset.shape[0] != len(samples):
                raise InputError(truth_path, key, f"shape {dataset.shape} is not (len(timestamps), channels)")
            sums = np.zeros((n_bins, dataset.shape[1]))
            for start in range(0, len(samples), TRUTH_CHUNK_ROWS):
                chunk = slice(start, start + TRUTH_CHUNK_ROWS)
                rows_inside = inside[chunk]
                block, block_bins = dataset[chunk][rows_inside], bins[chunk][rows_inside]
                for column in range(block.shape[1]):
                    sums[:, column] += np.bincount(block_bins, weights=block[:, column], minlength=n_bins)
            with np.errstate(invalid="ignore", divide="ignore"):
                means.append(sums / counts[:, None])
    return means[0], means[1]


def _check_bin_size(spec, bin_ms):
    if not isinstance(bin_ms, (int, np.integer)) or bin_ms < 1:
        raise InputError("<bin_ms>", "bin_ms", f"{bin_ms!r} is not a positive whole number of ms")
    windows = [spec.window, spec.target_window, spec.window.forward(spec.forward_ms)]
    for window in windows:
        span = window.offsets_ms[1] - window.offsets_ms[0] if window.offsets_ms else window.length_ms
        if span % bin_ms:
            raise InputError(f"<spec {spec.name}>", "bin_ms",
                             f"{bin_ms} ms does not divide a {span} ms window")


def _require_trial_fields(rec, spec):
    """Fail early, naming the field, when the trials table lacks something the spec needs."""
    needs = {"split": "to choose training and evaluation trials"}
    for purpose, window in (("model-input", spec.window), ("target", spec.target_window),
                            ("PSTH", spec.psth_window)):
        if window is None:
            continue
        needs.setdefault(window.align_field, f"to align the {purpose} windows")
        if window.offsets_ms is None:
            needs.setdefault(window.start_field, f"as the start of the {purpose} windows")
            needs.setdefault(window.end_field, f"as the end of the {purpose} windows")
    for field in spec.condition_fields:
        needs.setdefault(field, "to group trials into PSTH conditions")
    if spec.behavior_from_trials:
        for field in spec.behavior_fields:
            needs.setdefault(field, "as behaviour")
    if spec.decode_mask_field:
        needs.setdefault(spec.decode_mask_field, "to choose a velocity decoder per trial")
    if spec.outlier_field:
        needs.setdefault(spec.outlier_field, "to mark outlier trials")
    if spec.jitter:
        needs.setdefault(spec.jitter.field, "to draw the training-window jitter")
    for field, purpose in needs.items():
        rec.require_trial_field(field, purpose)
    aligned_by = {window.align_field for window in (spec.window, spec.target_window, spec.psth_window) if window}
    for field in sorted(aligned_by):
        if not rec.trial_time_ns(field)[1].any():
            raise InputError(rec.paths[0], field, f"NaN (or not a time) in every trial; needed {needs[field]}")
