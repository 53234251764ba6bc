"""Checkpoints that know what they are checkpoints of.

A run's identity is a fingerprint of its model kind, the settings that shape training (every param but
those that only affect logging, cluster resources or prediction) and the training data's content
(bytes, not path or mtime). A checkpoint is resumed only by a run with the same identity; any other is
ignored with one line in the log. An unreadable checkpoint (truncated, empty) is set aside beside
itself as `<name>.unreadable` with a one-line warning, and training starts over.

A run's checkpoints are written by a `CheckpointWriter`: `last.pt` (with history.csv) at most every
`checkpoint_every_s` seconds and after the last epoch, on a thread of its own. Resuming from an older
`last.pt` replays the epochs since with the same RNG states, so a killed run still resumes exactly; it
only loses the time since that write.
"""

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import torch

from latentdyn.errors import InputError
from latentdyn.io import atomic_path
from latentdyn.training.device import resolve_device
from latentdyn.training.reporting import HISTORY_NAME, write_history

STATE_DIR = "training"  # resumable state of a run in progress: last.pt, best.pt
FINAL_NAME = "model.pt"  # the selected weights of a finished run
# Params that change neither the trained weights nor their meaning.
NOT_IDENTITY = frozenset({"log_every", "checkpoint_every_s", "resources"})


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


def snapshot(payload):
    """A copy of a `training_payload` that training may go on from: every tensor cloned where it is
    (on a GPU, no host sync). Its `loop` is a copy already (LoopState.state_dict)."""
    return {key: value if key == "loop" else _copy_tensors(value, _clone) for key, value in payload.items()}


def on_host(payload):
    """A snapshot with its tensors on the CPU, for a write that runs beside training: it then makes no
    CUDA calls (which would break a CUDA-graph capture in progress)."""
    return {key: value if key == "loop" else _copy_tensors(value, torch.Tensor.cpu) for key, value in payload.items()}


def _clone(tensor):
    return tensor.detach().clone()


def _copy_tensors(value, copy_tensor):
    if isinstance(value, torch.Tensor):
        return copy_tensor(value)
    if isinstance(value, dict):
        copied = value.copy()  # an OrderedDict state_dict keeps its _metadata (module versions)
        copied.update((key, _copy_tensors(item, copy_tensor)) for key, item in value.items())
        return copied
    if type(value) in (list, tuple):
        return type(value)(_copy_tensors(item, copy_tensor) for item in value)
    return value


class CheckpointWriter:
    """Writes a run's `training/last.pt` and history.csv when `every_s` seconds have passed since the last
    write (0: every epoch) and after the run's last epoch, and `best.pt` (with `keep_best`) just before
    them when the monitor improved since.

    A resume needs only `last.pt` and the best weights up to its epoch, so an improvement is kept as a
    snapshot on the device and written with the next `last.pt`. Writes run on a thread, from copies on
    the host taken first (training goes on meanwhile), one at a time per run, each file atomic and in
    the order best, last, history: a `last.pt` on disk always has its `best.pt` beside it. Use as a
    context manager: leaving it waits for the write in flight, so a finished or failed `fit` leaves no
    write behind.
    """

    clock = staticmethod(time.monotonic)  # when a write is due (a test replaces it)

    def __init__(self, run_dir, every_s, keep_best=True):
        self.run_dir, self.every_s, self.keep_best = Path(run_dir), every_s, keep_best
        self.best, self.best_written = None, True
        self.written_at = self.clock()
        self.thread, self.error = None, None

    def epoch_done(self, loop, improved, payload, final):
        """After `loop`'s epoch: `payload()` gives the run's `training_payload`; `final`: no epoch follows."""
        if improved and self.keep_best:
            self.best, self.best_written = snapshot(payload()), False
        now = self.clock()
        if not final and now - self.written_at < self.every_s:
            return
        self.written_at = now
        current = self.best if improved and self.keep_best else snapshot(payload())
        last = on_host(current)
        best = [] if self.best_written else [("best.pt", last if current is self.best else on_host(self.best))]
        files, self.best_written = best + [("last.pt", last)], True
        self.wait()
        self.thread = threading.Thread(target=self._write, args=(files, list(loop.history)), name="checkpoint")
        self.thread.start()

    def _write(self, files, history):
        try:
            for name, payload in files:
                save_checkpoint(self.run_dir / STATE_DIR / name, payload)
            write_history(self.run_dir / HISTORY_NAME, history)
        except BaseException as error:  # raised in training's thread by wait()
            self.error = error

    def wait(self):
        """Until the write in flight is done; raises its error, if it had one."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            self.wait()
        elif self.thread is not None:  # the first error is the one to see
            self.thread.join()


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
