"""How each dataset is cut into trials: the Neural Latents Benchmark's parameters, and user datasets.

NLB values are those of neurallatents/nlb_tools `nlb_tools/make_tensors.py` `PARAMS` (the version
with `jitter`, lags 100/140/-20/120 and PSTH sigmas 70/40/70/50): `make_params` is our `window`
(model input), `eval_make_params` our `target_window` (held-out target, behaviour, forward window),
`psth_params` our PSTH fields, `fp_len` our `forward_ms`.
"""

from dataclasses import dataclass, replace

from latentdyn.errors import InputError


@dataclass(frozen=True)
class Window:
    """One trial window, in the terms of nlb_tools' `NWBDataset.make_trial_data`.

    With `offsets_ms` the window is [align + start, align + end); without, it runs from `start_field`
    to `end_field` and is stored `length_ms` long, NaN-padded at the `pad` end ('back' or 'front').
    Unless `allow_overlap`, a window stops where the next selected trial's window (or the start of
    the trial after that) begins. Field names are the NWB trials-table columns.
    """

    align_field: str
    offsets_ms: tuple[int, int] | None = None
    start_field: str = "start_time"
    end_field: str = "stop_time"
    allow_overlap: bool = False
    length_ms: int | None = None
    pad: str = "back"

    def lagged(self, lag_ms):
        """The window shifted later by `lag_ms` (behaviour lags the neural window, `_prep_behavior`)."""
        start, end = self.offsets_ms
        return replace(self, offsets_ms=(start + lag_ms, end + lag_ms))

    def forward(self, forward_ms):
        """The `forward_ms` right after the window, overlap allowed (`make_tensors._prep_fp`)."""
        end = self.offsets_ms[1] if self.offsets_ms else 0
        return Window(self.align_field, (end, end + forward_ms), allow_overlap=True)

    def length_bins(self, bin_ms):
        span = self.offsets_ms[1] - self.offsets_ms[0] if self.offsets_ms else self.length_ms
        return span // bin_ms


@dataclass(frozen=True)
class Jitter:
    """DMFC_RSG: each training window is shifted later by a random whole number of bins drawn from
    [0, clip(span_ms - tp, 0, max_ms)) ms (0 for test trials), from `numpy.random.seed(seed)`; this
    keeps models from reading the go time off the window's end (`PARAMS['dmfc_rsg']['jitter']`)."""

    field: str = "tp"
    span_ms: float = 1500.0
    max_ms: float = 300.0
    seed: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to turn a dataset's NWB files into binned tensors."""

    name: str
    window: Window  # model input windows (nlb `make_params`)
    target_window: Window  # eval held-out target, behaviour and forward windows (`eval_make_params`)
    behavior_fields: tuple[str, ...] = ()  # continuous signals, or trial fields if behavior_from_trials
    behavior_from_trials: bool = False
    behavior_lag_ms: int = 0
    condition_fields: tuple[str, ...] = ()  # trials with equal values form a PSTH condition
    psth_sigma_ms: float | None = None
    psth_window: Window | None = None
    outlier_field: str | None = None  # DMFC is_outlier: ==1 left out of PSTHs, !=0 behaviour NaN
    decode_mask_field: str | None = None  # Area2 ctr_hold_bump: one velocity decoder per value 0/1
    jitter: Jitter | None = None
    forward_ms: int = 200


def _maze(name, lag_ms, psth_sigma_ms):
    window = Window("move_onset_time", (-250, 450))
    return DatasetSpec(name, window, window, ("hand_vel",), behavior_lag_ms=lag_ms,
                       condition_fields=("trial_type", "trial_version"), psth_sigma_ms=psth_sigma_ms,
                       psth_window=window)


_DMFC_SET_TO_GO = Window("go_time", None, "set_time", "go_time", length_ms=1500, pad="front")

NLB_SPECS = {
    spec.name: spec
    for spec in (
        _maze("mc_maze", 100, 70),
        _maze("mc_maze_large", 120, 50),
        _maze("mc_maze_medium", 120, 50),
        _maze("mc_maze_small", 120, 50),
        DatasetSpec("mc_rtt", Window("start_time", (0, 600), allow_overlap=True),
                    Window("start_time", (0, 600), allow_overlap=True), ("finger_vel",),
                    behavior_lag_ms=140),
        DatasetSpec("area2_bump", Window("move_onset_time", (-100, 500)),
                    Window("move_onset_time", (-100, 500), allow_overlap=True), ("hand_vel",),
                    behavior_lag_ms=-20, condition_fields=("cond_dir", "ctr_hold_bump"),
                    psth_sigma_ms=40, psth_window=Window("move_onset_time", (-100, 500)),
                    decode_mask_field="ctr_hold_bump"),
        DatasetSpec("dmfc_rsg", Window("go_time", (-1500, 0), allow_overlap=True), _DMFC_SET_TO_GO,
                    ("is_eye", "theta", "is_short", "ts", "tp"), behavior_from_trials=True,
                    condition_fields=("is_eye", "theta", "is_short", "ts"), psth_sigma_ms=70,
                    psth_window=_DMFC_SET_TO_GO, outlier_field="is_outlier", jitter=Jitter()),
    )
}

USER_SPEC_KEYS = {
    "align_field": "trials-table column the windows are aligned to (seconds)",
    "window_ms": "[start, end] offsets from the alignment, in ms",
    "bin_ms": "bin sizes the dataset will be binned at, in ms",
    "behavior_fields": "continuous signals in processing/ to decode (may be empty)",
    "behavior_lag_ms": "how much later than the spikes behaviour is taken, in ms",
    "condition_fields": "trials-table columns that define PSTH conditions (may be empty)",
    "psth_sigma_ms": "Gaussian smoothing for the PSTH, in ms",
    "allow_overlap": "whether a window may run into the next trial",
}


def user_spec(name, config, source="config"):
    """A DatasetSpec for a user recording from its config entry (keys: USER_SPEC_KEYS)."""
    unknown = sorted(set(config) - set(USER_SPEC_KEYS))
    if unknown:
        raise InputError(source, unknown[0], f"unknown key; expected one of {sorted(USER_SPEC_KEYS)}")
    for key, meaning in USER_SPEC_KEYS.items():
        if key not in config:
            raise InputError(source, key, f"missing; it gives the {meaning}")
    start, end = (int(v) for v in config["window_ms"])
    if end <= start:
        raise InputError(source, "window_ms", f"end {end} must be after start {start}")
    for bin_ms in config["bin_ms"]:
        if (end - start) % bin_ms or 200 % bin_ms:
            raise InputError(source, "bin_ms", f"{bin_ms} ms does not divide the {end - start} ms window "
                                               "and the 200 ms forward window")
    window = Window(config["align_field"], (start, end), allow_overlap=bool(config["allow_overlap"]))
    conditions = tuple(config["condition_fields"])
    return DatasetSpec(
        name, window, window, tuple(config["behavior_fields"]),
        behavior_lag_ms=int(config["behavior_lag_ms"]),
        condition_fields=conditions,
        psth_sigma_ms=float(config["psth_sigma_ms"]) if conditions else None,
        psth_window=window if conditions else None,
    )


def dataset_spec(name):
    """The NLB spec called `name`."""
    if name not in NLB_SPECS:
        raise InputError("<dataset>", name, f"not an NLB dataset; known: {sorted(NLB_SPECS)}; give a spec "
                                            "for user datasets")
    return NLB_SPECS[name]
