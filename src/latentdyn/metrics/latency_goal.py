"""The latency goal of the NDT comparison (issue 10), read off timing rows (metrics/latency.py).

Kept free of torch so that a figure, drawn in the plotting environment, can state it. The goal: NDT at
most 1 ms per trial at batch 1 on one modern GPU at the MC_Maze 5 ms size (140 bins), and at least 6x
faster than LFADS on the same device.
"""

GOAL_BINS = 140
GOAL_MS_PER_TRIAL = 1.0
GOAL_SPEEDUP = 6.0
SAME_RATES_TOLERANCE = 1e-3  # largest |rates - fp32 eager rates| of a variant that counts
FAST_KIND, SLOW_KIND = "ndt", "lfads"


def goal_check(rows):
    """Best batch-1 NDT against best batch-1 LFADS at GOAL_BINS, among variants whose rates match fp32
    eager (half precision counts only if it does); {} when either kind has no such row."""
    at_size = [row for row in rows if row["bins"] == GOAL_BINS and row["max_abs_diff"] <= SAME_RATES_TOLERANCE]
    best = {
        kind: min((row for row in at_size if row["kind"] == kind), key=lambda row: row["ms_per_trial"], default=None)
        for kind in (FAST_KIND, SLOW_KIND)
    }
    if None in best.values():
        return {}
    speedup = best[SLOW_KIND]["ms_per_trial"] / best[FAST_KIND]["ms_per_trial"]
    return {
        FAST_KIND: best[FAST_KIND],
        SLOW_KIND: best[SLOW_KIND],
        "speedup": speedup,
        "ndt_at_most_1ms": best[FAST_KIND]["ms_per_trial"] <= GOAL_MS_PER_TRIAL,
        "at_least_6x": speedup >= GOAL_SPEEDUP,
    }
