"""Checkpoints that know what they are checkpoints of.

A run's identity is a fingerprint of its model kind, the settings that shape training (every param but
those that only affect logging, cluster resources or prediction) and the training data's content
(bytes, not path or mtime). A checkpoint is resumed only by a run with the same identity; any other is
ignored with one line in the log. An unreadable checkpoint (truncated, empty) is set aside beside
itself as `<name>.unreadable` with a one-line warning, and training starts over.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from latentdyn.errors import InputError
from latentdyn.io import atomic_path

STATE_DIR = "training"  # resumable state of a run in progress: last.pt, best.pt
FINAL_NAME = "model.pt"  # the selected weights of a finished run
# Params that change neither the trained weights nor their meaning.
NOT_IDENTITY = frozenset({"log_every", "resources"})


def run_identity(kind, params, prepared, seed, prediction_only=(), initial_weights=None):
    """Fingerprint (hex) of what a run trains: kind, training-relevant params, seed, training data and,
    for a run that starts from another run's weights, that run's identity."""
    settings = {k: v for k, v in params.items() if k not in NOT_IDENTITY and k not in prediction_only}
    described = [kind, settings, seed] + ([initial_weights] if initial_weights is not None else [])
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for split in (prepared.train, prepared.valid):
        for array in (split.encoder_input, split.target, split.trial_index):
            array = np.ascontiguousarray(array)
            digest.update(str((array.dtype, array.shape)).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def save_checkpoint(path, payload):
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path, identity, device, required=False):
    """The checkpoint at `path` if it exists, is readable and (unless `identity` is None) matches.

    Otherwise None, with one line saying why; with `required`, an InputError naming the file.
    """
    path = Path(path)
    if not path.exists():
        if required:
            raise InputError(path, "<file>", "checkpoint does not exist")
        return None
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
        stored = checkpoint["identity"]
    except Exception as error:  # torch raises RuntimeError, EOFError, pickle and zip errors alike
        if required:
            raise InputError(path, "<file>", f"unreadable checkpoint ({type(error).__name__})") from error
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        print(f"warning: {path}: unreadable checkpoint ({type(error).__name__}); moved to {aside.name}, training from scratch", flush=True)
        return None
    if identity is not None and stored != identity:
        if required:
            raise InputError(path, "identity", "checkpoint belongs to another model or data")
        print(f"{path}: checkpoint of a different model or data (identity {stored[:12]} != {identity[:12]}); training from scratch", flush=True)
        return None
    return checkpoint


def discard_state(state_dir):
    shutil.rmtree(state_dir, ignore_errors=True)
