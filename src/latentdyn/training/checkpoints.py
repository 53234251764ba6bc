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
from latentdyn.training.device import resolve_device

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
        if split is None:  # kinds not trained by gradient validate on nothing
            continue
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
        checkpoint = torch.load(path, map_location=resolve_device(device), weights_only=False)
        problem = None if isinstance(checkpoint, dict) and "identity" in checkpoint else (
            "checkpoint from an older format (it records no run identity)")
    except Exception as error:  # torch raises RuntimeError, EOFError, pickle and zip errors alike
        problem = f"unreadable checkpoint ({type(error).__name__})"
    if problem is not None:
        if required:
            raise InputError(path, "<file>", problem)
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        print(f"warning: {path}: {problem}; moved to {aside.name}, training from scratch", flush=True)
        return None
    stored = checkpoint["identity"]
    if identity is not None and stored != identity:
        if required:
            raise InputError(path, "identity", "checkpoint belongs to another model or data")
        print(f"{path}: checkpoint of a different model or data (identity {stored[:12]} != {identity[:12]}); training from scratch", flush=True)
        return None
    return checkpoint


def discard_state(state_dir):
    shutil.rmtree(state_dir, ignore_errors=True)


def training_payload(model, optimizer, shuffler, loop, identity, generator=None):
    """What `training/last.pt` and `best.pt` hold: all that an exact resume needs (weights, optimiser,
    the batch shuffler's and torch's RNG state, the trainer's loop state) and the run's identity.

    `generator`: where the run's random draws come from when not torch's default generator (a member
    of a stack, training/stacked.py); its state is saved where a lone run saves the default generator's
    on that device, so that either kind of run resumes the other."""
    torch_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    if generator is not None and generator.device.type == "cpu":
        torch_rng = generator.get_state()
    elif generator is not None:
        cuda_rng[_index(generator.device)] = generator.get_state()
    return {
        "identity": identity,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffler": shuffler.get_state(),
        "torch_rng": torch_rng,
        "cuda_rng": cuda_rng,
        "loop": loop.state_dict(),
    }


def restore_training(checkpoint, model, optimizer, shuffler, loop, generator=None):
    """Put a `training_payload` back, RNG states included (into `generator` when given, as saved), so
    training continues as if never stopped."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    shuffler.set_state(checkpoint["shuffler"])
    if generator is not None and generator.device.type == "cpu":
        generator.set_state(checkpoint["torch_rng"])
    elif generator is not None:
        generator.set_state(checkpoint["cuda_rng"][_index(generator.device)])
    else:
        torch.set_rng_state(checkpoint["torch_rng"])
        if checkpoint["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    loop.load_state_dict(checkpoint["loop"])


def _index(device):
    return torch.cuda.current_device() if device.index is None else device.index


def describe_selection(selected, epoch, epochs_run):
    """Which weights a finished run kept, as its output records it: e.g. 'best (epoch 12 of 30)'."""
    return f"{selected} (epoch {epoch} of {epochs_run})"


def finish_run(model, run_dir, select, identity, device, epochs_run):
    """Load the selected checkpoint ("best" when `select` asks for it and one was written, else "last")
    into `model`, write `model.pt`, remove the resumable state; returns (selected, its epoch)."""
    state_dir = Path(run_dir) / STATE_DIR
    selected = "best" if select == "best" and (state_dir / "best.pt").exists() else "last"
    checkpoint = load_checkpoint(state_dir / f"{selected}.pt", identity, device, required=True)
    model.load_state_dict(checkpoint["model"])
    epoch = checkpoint["loop"]["epoch"]
    save_checkpoint(
        Path(run_dir) / FINAL_NAME,
        {"identity": identity, "model": model.state_dict(), "selected": selected, "epoch": epoch, "epochs_run": epochs_run},
    )
    discard_state(state_dir)
    return selected, epoch
