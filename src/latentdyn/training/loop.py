"""The training loop every gradient-trained model shares.

Seeded; one checkpoint per epoch written atomically (model, optimiser and RNG state, history), so a
killed job resumes where it stopped and finishes with the same parameters as an uninterrupted run;
per-epoch metrics in `history.csv`; a progress line every `log_every` epochs; GPU when available.
"""

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from latentdyn.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.csv"


def resolve_device(name="auto"):
    """'auto' picks CUDA when a GPU is visible, else the CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrainingSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    grad_clip: float | None = None
    log_every: int = 25


@dataclass
class TrainingState:
    """Everything a resumed run needs besides the model itself."""

    epoch: int = 0
    history: list = field(default_factory=list)


def train(model, loss_fn, train_data, valid_data, settings, *, run_dir, seed, device):
    """Fit `model` by minimising `loss_fn(model, batch, epoch) -> scalar tensor`.

    `train_data` and `valid_data` are tensors with trials on the first axis (batches are row slices).
    Returns the training history (list of per-epoch dicts). Resumes from `run_dir/checkpoint.pt`.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    shuffler = torch.Generator().manual_seed(seed)
    state = _resume(run_dir / CHECKPOINT_NAME, model, optimizer, shuffler, device)
    if state.epoch:
        print(f"resumed from {run_dir / CHECKPOINT_NAME} at epoch {state.epoch}/{settings.epochs}", flush=True)
    train_data, valid_data = train_data.to(device), valid_data.to(device)
    started = time.monotonic()
    first_epoch = state.epoch
    while state.epoch < settings.epochs:
        epoch = state.epoch
        tic = time.monotonic()
        model.train()
        order = torch.randperm(len(train_data), generator=shuffler).to(device)
        total, n_batches = 0.0, 0
        for batch_index in order.split(settings.batch_size):
            loss = loss_fn(model, train_data[batch_index], epoch)
            optimizer.zero_grad()
            loss.backward()
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            total += loss.item()
            n_batches += 1
        model.eval()
        with torch.no_grad():
            valid_loss = loss_fn(model, valid_data, epoch).item()
        state.epoch += 1
        state.history.append(
            {"epoch": state.epoch, "train_loss": total / n_batches, "valid_loss": valid_loss, "seconds": time.monotonic() - tic}
        )
        _save(run_dir, model, optimizer, shuffler, state)
        if state.epoch % settings.log_every == 0 or state.epoch == settings.epochs:
            _print_progress(state, settings.epochs, started, first_epoch)
    return state.history


def _print_progress(state, total_epochs, started, first_epoch):
    row = state.history[-1]
    elapsed = time.monotonic() - started
    per_epoch = elapsed / max(state.epoch - first_epoch, 1)
    remaining = per_epoch * (total_epochs - state.epoch)
    print(
        f"epoch {state.epoch}/{total_epochs}  train {row['train_loss']:.4f}  valid {row['valid_loss']:.4f}"
        f"  elapsed {elapsed:.0f}s  eta {remaining:.0f}s",
        flush=True,
    )


def _save(run_dir, model, optimizer, shuffler, state):
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffler": shuffler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "epoch": state.epoch,
        "history": state.history,
    }
    with atomic_path(run_dir / CHECKPOINT_NAME) as tmp:
        torch.save(payload, tmp)
    with atomic_path(run_dir / HISTORY_NAME) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(state.history[0]))
        writer.writeheader()
        writer.writerows(state.history)


def _resume(path, model, optimizer, shuffler, device):
    if not path.exists():
        return TrainingState()
    payload = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    shuffler.set_state(payload["shuffler"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return TrainingState(epoch=payload["epoch"], history=payload["history"])


def load_trained(run_dir, model, device="cpu"):
    """Load the final parameters of a finished run into `model`."""
    payload = torch.load(Path(run_dir) / CHECKPOINT_NAME, map_location=device, weights_only=False)
    model.load_state_dict(payload["model"])
    return model
