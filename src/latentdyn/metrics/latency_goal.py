"""The latency goal of the NDT comparison (issue 10), read off timing rows (metrics/latency.py).

Kept free of torch and of the kind registry so that a figure, drawn in the plotting environment, can
state it. The goal: the kind declaring `latency_role: goal` in its kind.yaml (NDT) at most 1 ms per trial
at batch 1 on one modern GPU at the MC_Maze 5 ms size (140 bins), and at least 6x faster than the kind
declaring `latency_role: baseline` (LFADS) on the same device; `kinds.latency_kinds()` names them.
"""

GOAL_BINS = 140
GOAL_MS_PER_TRIAL = 1.0
GOAL_SPEEDUP = 6.0
SAME_RATES_TOLERANCE = 1e-3  # largest |rates - fp32 eager rates| of a variant that counts


def goal_check(rows, fast, slow):
    """Best batch-1 `fast` kind against best batch-1 `slow` kind at GOAL_BINS, among variants whose rates
    match fp32 eager (half precision counts only if it does); {} when either kind has no such row."""
    at_size = [row for row in rows if row["bins"] == GOAL_BINS and row["max_abs_diff"] <= SAME_RATES_TOLERANCE]
    best = {
        kind: min((row for row in at_size if row["kind"] == kind), key=lambda row: row["ms_per_trial"], default=None)
        for kind in (fast, slow)
    }
    if None in best.values():
        return {}
    speedup = best[slow]["ms_per_trial"] / best[fast]["ms_per_trial"]
    return {
        fast: best[fast],
        slow: best[slow],
        "speedup": speedup,
        f"{fast}_at_most_1ms": best[fast]["ms_per_trial"] <= GOAL_MS_PER_TRIAL,
        "at_least_6x": speedup >= GOAL_SPEEDUP,
    }
