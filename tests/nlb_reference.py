"""The NLB reference vector (shared/reference/nlb_vectors): tensors, rates and metrics nlb_tools gave."""

import json
import os
from pathlib import Path

import h5py

REFERENCE_DIR = Path(
    os.environ.get("LATENTDYN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference")
)
EXPECTED_PATH = REFERENCE_DIR / "nlb_vectors" / "maze_simple_expected.h5"
BIN_WIDTHS_S = {"bin5": 0.005, "bin20": 0.02}


def load_reference_vector(bin_group):
    """(targets, submission, expected metrics) for `bin5` or `bin20`; targets = input/* + target/*."""
    # shared/ sits beside every clone (CI included): a missing vector is an error, not a skip
    assert EXPECTED_PATH.exists(), f"NLB reference vector not found at {EXPECTED_PATH} (set LATENTDYN_REFERENCE_DIR)"
    with h5py.File(EXPECTED_PATH, "r") as f:
        group = f[bin_group]
        targets = {}
        for section in ("input", "target"):
            for key, node in group[section].items():
                targets[key] = (
                    [node[str(i)][()] for i in range(len(node))] if isinstance(node, h5py.Group) else node[()]
                )
        submission = {key: node[()] for key, node in group["rates"].items()}
        expected = json.loads(group.attrs["metrics"])
    return targets, submission, expected
