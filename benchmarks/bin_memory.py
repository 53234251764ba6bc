"""Wall time and peak memory of NWB -> binned tensors on a synthetic file of MC_Maze's size (not a test).

    python benchmarks/bin_memory.py [--workdir /tmp/latentdyn-bench] [--bin-ms 5 20]

Writes (once) a 1.5 h, 182-unit (137 held-in + 45 held-out), 2295-trial NWB with four 1 kHz behaviour
signals, then bins it with scripts/bin_nwb.py under `/usr/bin/time -v` and prints seconds and peak RSS.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from nwb_factory import write_nwb  # noqa: E402


def write_mazelike_nwb(path, seed=0):
    rng = np.random.default_rng(seed)
    n_trials, n_units = 2295, 182
    durations = rng.uniform(1.8, 2.9, n_trials)
    starts = np.concatenate([[0.5], 0.5 + np.cumsum(durations[:-1] + 0.05)]).round(3)
    end_s = float(np.ceil(starts[-1] + durations[-1] + 1))
    trials = {
        "start_time": starts,
        "stop_time": (starts + durations).round(3),
        "move_onset_time": (starts + rng.uniform(0.6, 1.2, n_trials)).round(3),
        "split": list(rng.choice(["train", "val"], n_trials, p=[0.75, 0.25])),
        "trial_type": rng.integers(0, 27, n_trials),
        "trial_version": rng.integers(0, 3, n_trials),
    }
    spikes = [np.sort(rng.uniform(0, end_s, rng.poisson(r * end_s))).round(4) for r in rng.gamma(2.0, 12.0, n_units)]
    t = np.arange(int(end_s * 1000)) / 1000
    names = ["hand_vel", "hand_pos", "cursor_pos", "eye_pos"]
    behavior = {name: np.stack([np.sin(t * f), np.cos(t * f)], 1) for f, name in enumerate(names, start=1)}
    heldout = np.arange(n_units) >= 137
    write_nwb(path, trials, spikes, heldout=heldout, obs_intervals=[[[0.0, end_s]]] * n_units, behavior=behavior)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/latentdyn-bench"))
    parser.add_argument("--bin-ms", type=int, nargs="+", default=[5, 20])
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    nwb = args.workdir / "mazelike.nwb"
    if not nwb.exists():
        write_mazelike_nwb(nwb)
    for bin_ms in args.bin_ms:
        out = args.workdir / f"mazelike_{bin_ms}ms.h5"
        command = ["/usr/bin/time", "-v", sys.executable, str(REPO / "scripts" / "bin_nwb.py"), "--nwb", str(nwb),
                   "--dataset", "mc_maze", "--bin-ms", str(bin_ms), "--phase", "val", "--out", str(out)]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        seconds = re.search(r"Elapsed \(wall clock\) time.*: (.*)", report).group(1)
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
        print(f"{bin_ms:3d} ms bins: wall {seconds}, peak memory {peak_kb / 1e6:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
