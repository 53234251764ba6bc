"""The trainer every gradient-trained model kind shares (the model owns its step: training/contract.py).

Seeded and exactly resumable: each epoch writes `training/last.pt` atomically (model, optimiser,
scheduler, early-stopping and RNG state, history) and, when the monitored validation quantity improves,
`training/best.pt`. A checkpoint records the run's identity (a fingerprint of the model's settings and
of the training data's content) and is resumed only by the same run; a run that finished writes
`model.pt` (the selected weights) and removes `training/`, so a forced rerun trains from scratch.
Predictions come from the best checkpoint unless `select: last`.

On a GPU, a model with `graph_safe = True` has its whole training step (forward, backward, clipping,
optimiser step) captured once in a CUDA graph and replayed; batches then have a fixed size and the
last partial batch of each epoch is dropped. On a CPU (Linux, glibc), the process keeps the memory
it frees for reuse (`keep_freed_memory`): results are the same, steps faster.
"""

import csv
import ctypes
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from latentdyn.io import atomic_path
from latentdyn.training.checkpoints import (
    FINAL_NAME,
    STATE_DIR,
    discard_state,
    load_checkpoint,
    save_checkpoint,
)
from latentdyn.training.contract import Batch, Progress

HISTORY_NAME = "history.csv"


def resolve_device(name="auto"):
    """'auto' picks CUDA when a GPU is visible, else the CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrainerSettings:
    """The trainer's part of a model's config (training/schema.yaml holds the defaults)."""

    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    adam_epsilon: float = 1e-8
    grad_clip: float | None = None
    scheduler: dict | None = None
    monitor: str = "valid_loss"
    smoothing: float = 0.0
    early_stopping: dict | None = None
    select: str = "best"
    log_every: int = 25
    cuda_graph: bool = True

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params[name] for name in cls.__dataclass_fields__ if name in params})


def batch_from(split, device):
    """A `Batch` of a whole split (SplitArrays), on `device`."""
    return Batch(
        encoder_input=torch.as_tensor(split.encoder_input),
        target=torch.as_tensor(split.target),
        trial_index=torch.as_tensor(split.trial_index, dtype=torch.int64),
        truth={k: torch.as_tensor(v) for k, v in split.truth.items()},
        ext_input=None if split.ext_input is None else torch.as_tensor(split.ext_input),
    ).to(device)


def keep_freed_memory():
    """Have glibc reuse freed memory instead of returning it to the kernel (once per process; Linux only).

    A CPU training step allocates and frees the same large tensors every step. glibc serves blocks
    above its mmap threshold (at most 32 MiB) with fresh mmap'd pages, and trims freed memory at the top
    of the heap, so each step page-faults and zero-fills hundreds of MiB anew: at LFADS's mc_maze 5 ms
    size that was a quarter of the step. With mmap off (M_MMAP_MAX 0) and a 2 GiB trim threshold,
    the heap is reused; the resident size stays near the step's peak, which it reaches every step
    anyway. Allocation only: no result changes.
    """
    global _MEMORY_KEPT
    if _MEMORY_KEPT or not sys.platform.startswith("linux"):
        return
    _MEMORY_KEPT = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    mallopt(ctypes.c_int(M_MMAP_MAX), ctypes.c_int(0))
    mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(2**31 - 1))


_MEMORY_KEPT = False


def fit(model, prepared, settings, *, run_dir, seed, device, identity, restore_from=None, hyperparameters=None):
    """Train `model` on `prepared.train`, validating on `prepared.valid`; returns the history.

    `identity` is the run's fingerprint (training.checkpoints.run_identity): `training/last.pt` is
    resumed only when it matches. `restore_from` instead starts from another run's checkpoint (population-
    based training) and applies `hyperparameters` (the model's params) after the restore. When this
    returns, `model` holds the selected weights and `run_dir/model.pt` exists.
    """
    run_dir = Path(run_dir)
    state_dir = run_dir / STATE_DIR
    torch.manual_seed(seed)
    if torch.device(device).type == "cpu":
        keep_freed_memory()
    model.to(device)
    optimizer = _make_optimizer(model, settings, graphed=_use_graph(model, settings, device))
    shuffler = torch.Generator().manual_seed(seed)
    loop = _LoopState()
    source = restore_from or state_dir / "last.pt"
    checkpoint = load_checkpoint(source, None if restore_from else identity, device)
    if checkpoint is not None:
        _restore(checkpoint, model, optimizer, shuffler, loop)
        print(f"resumed from {source} at epoch {loop.epoch}/{settings.epochs}", flush=True)
        if hyperparameters is not None and hasattr(model, "set_hyperparameters"):
            model.set_hyperparameters(hyperparameters)
    _set_lr(optimizer, settings.learning_rate * loop.lr_factor, settings.weight_decay)

    train_batch = batch_from(prepared.train, device)
    valid_batch = batch_from(prepared.valid, device)
    step = _make_step(model, optimizer, settings, device, train_batch)
    progress_bar = _progress_bar(settings.epochs, loop.epoch)
    started, first_epoch = time.monotonic(), loop.epoch
    while loop.epoch < settings.epochs and not loop.stopped:
        tic = time.monotonic()
        progress = Progress(epoch=loop.epoch, total_epochs=settings.epochs)
        model.train()
        order = torch.randperm(len(train_batch), generator=shuffler)
        sums, n_batches = {}, 0
        for batch_rows, lr_factor in _batches(order, settings, loop, len(train_batch), step.drops_last):
            _set_lr(optimizer, settings.learning_rate * loop.lr_factor * lr_factor, settings.weight_decay)
            result = step(train_batch.select(batch_rows.to(device)), progress)
            _accumulate(sums, {"loss": result.loss, **result.terms})
            n_batches += 1
        row = {"epoch": loop.epoch + 1}
        row.update({f"train_{k}": v.item() / n_batches for k, v in sums.items()})
        model.eval()
        with torch.no_grad():
            valid = model.validation_step(valid_batch, progress)
        row.update({f"valid_{k}": float(v) for k, v in {"loss": valid.loss, **valid.terms}.items()})
        improved = loop.update(row, settings)
        row.update(seconds=time.monotonic() - tic, lr=_get_lr(optimizer))
        loop.history.append(row)
        payload = _payload(model, optimizer, shuffler, loop, identity)
        save_checkpoint(state_dir / "last.pt", payload)
        if improved:
            save_checkpoint(state_dir / "best.pt", payload)
        _write_history(run_dir / HISTORY_NAME, loop.history)
        _report(progress_bar, loop, settings, started, first_epoch)
    if progress_bar is not None:
        progress_bar.close()
    _finish(model, run_dir, settings, identity, device, loop)
    return loop.history


class _LoopState:
    """Epoch, history, scheduler and early-stopping state: all that a resumed run needs besides weights."""

    def __init__(self):
        self.epoch = 0
        self.history = []
        self.smoothed = None
        self.best = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.plateau_bad_epochs = 0
        self.lr_factor = 1.0
        self.stopped = False
        self.steps = 0

    def update(self, row, settings):
        """Advance one epoch with its logged row; returns whether the monitored value improved."""
        self.epoch += 1
        if settings.monitor not in row:
            raise KeyError(f"monitor '{settings.monitor}' is not a logged quantity; logged: {sorted(row)}")
        value = row[settings.monitor]
        c = settings.smoothing
        self.smoothed = value if self.smoothed is None else c * self.smoothed + (1 - c) * value
        row[f"{settings.monitor}_smoothed"] = self.smoothed
        improved = self.smoothed < self.best
        if improved:
            self.best, self.best_epoch = self.smoothed, self.epoch
        stopping = settings.early_stopping
        if stopping is not None and self.epoch > stopping.get("burn_in", 0):
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            self.stopped = self.bad_epochs >= stopping.get("patience", 200)
        scheduler = settings.scheduler or {}
        if scheduler.get("kind") == "plateau":
            self.plateau_bad_epochs = 0 if improved else self.plateau_bad_epochs + 1
            if self.plateau_bad_epochs > scheduler.get("patience", 6):
                floor = scheduler.get("min_lr", 0.0) / settings.learning_rate
                self.lr_factor = max(self.lr_factor * scheduler.get("factor", 0.95), floor)
                self.plateau_bad_epochs = 0
        return improved

    def state_dict(self):
        return dict(self.__dict__, history=list(self.history))

    def load_state_dict(self, state):
        self.__dict__.update(state)


def _batches(order, settings, loop, n_trials, drop_last):
    """Row indices of each batch, with the warm-up/cosine factor for that optimiser step."""
    size = settings.batch_size if not drop_last else min(settings.batch_size, n_trials)
    chunks = order.split(size)
    if drop_last and len(chunks[-1]) < size:
        chunks = chunks[:-1]
    steps_per_epoch = len(chunks)
    for rows in chunks:
        yield rows, _schedule_factor(settings, loop.steps, steps_per_epoch)
        loop.steps += 1


def _schedule_factor(settings, step, steps_per_epoch):
    scheduler = settings.scheduler or {}
    if scheduler.get("kind") != "warmup_cosine":
        return 1.0
    warmup = scheduler.get("warmup_epochs", 0) * steps_per_epoch
    total = settings.epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def _make_optimizer(model, settings, graphed):
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
    lr = torch.tensor(settings.learning_rate, device=next(model.parameters()).device) if graphed else settings.learning_rate
    extra = {"capturable": True} if graphed else {}
    return kind(model.parameters(), lr=lr, weight_decay=settings.weight_decay, eps=settings.adam_epsilon, **extra)


def _set_lr(optimizer, lr, weight_decay):
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
        group["weight_decay"] = weight_decay


def _get_lr(optimizer):
    return float(optimizer.param_groups[0]["lr"])


def _use_graph(model, settings, device):
    return settings.cuda_graph and torch.device(device).type == "cuda" and getattr(model, "graph_safe", False)


def _make_step(model, optimizer, settings, device, train_batch):
    if _use_graph(model, settings, device):
        return _GraphedStep(model, optimizer, settings, train_batch)
    return _EagerStep(model, optimizer, settings)


class _EagerStep:
    drops_last = False

    def __init__(self, model, optimizer, settings):
        self.model, self.optimizer, self.settings = model, optimizer, settings

    def __call__(self, batch, progress):
        result = self.model.training_step(batch, progress)
        self.optimizer.zero_grad()
        result.loss.backward()
        if self.settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        return _detached(result)


class _GraphedStep(_EagerStep):
    """The whole training step captured once in a CUDA graph, replayed on batches of a fixed size.

    The first `WARMUP` steps run eagerly (on a side stream, as CUDA graph capture requires); they are
    real steps, so training matches the eager loop. The epoch reaches the graph through a device tensor
    (`progress.epoch_tensor`), which a graph-safe model uses for its ramps.
    """

    drops_last = True
    WARMUP = 3

    def __init__(self, model, optimizer, settings, train_batch):
        super().__init__(model, optimizer, settings)
        self.graph = None
        self.static_batch = None
        self.static_result = None
        self.epoch_tensor = torch.zeros((), device=train_batch.encoder_input.device)
        self.calls = 0

    def __call__(self, batch, progress):
        self.epoch_tensor.fill_(progress.epoch)
        progress = Progress(progress.epoch, progress.total_epochs)
        progress.epoch_tensor = self.epoch_tensor
        if self.calls < self.WARMUP:
            self.calls += 1
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                result = super().__call__(batch, progress)
            torch.cuda.current_stream().wait_stream(stream)
            return result
        if self.graph is None:
            self.static_batch = batch
            self.graph = torch.cuda.CUDAGraph()
            self.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                result = self.model.training_step(self.static_batch, progress)
                result.loss.backward()
                if self.settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip, foreach=True)
                self.optimizer.step()
            self.static_result = result
        else:
            _copy_batch(self.static_batch, batch)
        self.graph.replay()
        return _detached(self.static_result, clone=True)


def _copy_batch(static, batch):
    static.encoder_input.copy_(batch.encoder_input)
    static.target.copy_(batch.target)
    static.trial_index.copy_(batch.trial_index)
    if batch.ext_input is not None:
        static.ext_input.copy_(batch.ext_input)
    for key, value in batch.truth.items():
        static.truth[key].copy_(value)


def _detached(result, clone=False):
    def detach(value):
        value = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value)
        return value.clone() if clone else value

    return type(result)(detach(result.loss), {k: detach(v) for k, v in result.terms.items()})


def _accumulate(sums, terms):
    for name, value in terms.items():
        value = value.detach().float()
        sums[name] = sums[name] + value if name in sums else value


def _payload(model, optimizer, shuffler, loop, identity):
    return {
        "identity": identity,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffler": shuffler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "loop": loop.state_dict(),
    }


def _restore(checkpoint, model, optimizer, shuffler, loop):
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    shuffler.set_state(checkpoint["shuffler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    if checkpoint["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    loop.load_state_dict(checkpoint["loop"])


def _finish(model, run_dir, settings, identity, device, loop):
    """Load the selected weights into `model`, write model.pt, remove the resumable state."""
    state_dir = run_dir / STATE_DIR
    chosen = "best" if settings.select == "best" and (state_dir / "best.pt").exists() else "last"
    checkpoint = load_checkpoint(state_dir / f"{chosen}.pt", identity, device, required=True)
    model.load_state_dict(checkpoint["model"])
    epoch = checkpoint["loop"]["epoch"]
    save_checkpoint(
        run_dir / FINAL_NAME,
        {"identity": identity, "model": model.state_dict(), "selected": chosen, "epoch": epoch, "epochs_run": loop.epoch},
    )
    model.selected_checkpoint = f"{chosen} (epoch {epoch} of {loop.epoch})"
    discard_state(state_dir)


def _write_history(path, history):
    columns = list(dict.fromkeys(key for row in history for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def _progress_bar(total, initial):
    """A tqdm bar on a terminal; in logs, progress lines every `log_every` epochs instead."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True)


def _report(progress_bar, loop, settings, started, first_epoch):
    row = loop.history[-1]
    if progress_bar is not None:
        progress_bar.update(1)
        progress_bar.set_postfix(train=f"{row['train_loss']:.4f}", valid=f"{row['valid_loss']:.4f}")
        return
    if loop.epoch % settings.log_every and loop.epoch != settings.epochs and not loop.stopped:
        return
    elapsed = time.monotonic() - started
    remaining = elapsed / max(loop.epoch - first_epoch, 1) * (settings.epochs - loop.epoch)
    stop = f"  early stop (best epoch {loop.best_epoch})" if loop.stopped else ""
    print(
        f"epoch {loop.epoch}/{settings.epochs}  train {row['train_loss']:.4f}  valid {row['valid_loss']:.4f}"
        f"  elapsed {elapsed:.0f}s  eta {remaining:.0f}s{stop}",
        flush=True,
    )
