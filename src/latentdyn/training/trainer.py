"""The trainer every gradient-trained model kind shares (the model owns its step: training/contract.py).

Seeded and exactly resumable: `training/last.pt` (model, optimiser, scheduler, early-stopping and RNG
state, history) is written atomically at most every `checkpoint_every_s` seconds and after the last
epoch, with `training/best.pt` (the epoch where the monitored validation quantity was best so far) and
history.csv; a run killed in between resumes from it and replays the epochs since exactly
(checkpoints.CheckpointWriter). A checkpoint records the run's identity (a fingerprint of the model's
settings and of the training data's content) and is resumed only by the same run; a run that finished
writes `model.pt` (the selected weights) and removes `training/`, so a forced rerun trains from scratch.
Predictions come from the best checkpoint unless `select: last`.

This file holds the epoch loop; its parts live beside it: steps.py (the eager or CUDA-graphed step),
stacked.py (K models of one shape trained as one, each member a run of its own),
schedules.py (learning rate, early stopping, optimiser), checkpoints.py (what is saved, restored and
selected), reporting.py (history CSV, progress output), device.py (device choice, CPU allocator).
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from latentdyn.training.checkpoints import (
    STATE_DIR,
    CheckpointWriter,
    describe_selection,
    finish_run,
    load_checkpoint,
    restore_training,
    training_payload,
)
from latentdyn.training.contract import Batch, Progress
from latentdyn.training.device import keep_freed_memory, resolve_device
from latentdyn.training.reporting import EpochReport
from latentdyn.training.schedules import LoopState, epoch_batches, get_lr, make_optimizer, set_lr
from latentdyn.training.steps import make_step, use_graph


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
    checkpoint_every_s: float = 60.0
    cuda_graph: bool = True

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params[name] for name in cls.__dataclass_fields__ if name in params})


@dataclass(frozen=True)
class FitResult:
    """What `fit` returns: the per-epoch history and which checkpoint's weights the model now holds."""

    history: list  # one dict per epoch run: the rows of history.csv
    selected: str  # "best" or "last"
    epoch: int  # the epoch of the selected checkpoint
    epochs_run: int

    def selected_checkpoint(self):
        """The selection as a run's output records it, e.g. 'best (epoch 12 of 30)'."""
        return describe_selection(self.selected, self.epoch, self.epochs_run)


def batch_from(split, device):
    """A `Batch` of a whole split (SplitArrays), on `device` ('auto' allowed)."""
    return Batch(
        encoder_input=torch.as_tensor(split.encoder_input),
        target=torch.as_tensor(split.target),
        trial_index=torch.as_tensor(split.trial_index, dtype=torch.int64),
        truth={k: torch.as_tensor(v) for k, v in split.truth.items()},
        ext_input=None if split.ext_input is None else torch.as_tensor(split.ext_input),
    ).to(device)


def fit(model, prepared, settings, *, run_dir, seed, device, identity, restore_from=None, hyperparameters=None,
        finish=True):
    """Train `model` on `prepared.train`, validating on `prepared.valid`, on `device` ('auto' allowed).

    `identity` is the run's fingerprint (training.checkpoints.run_identity): `training/last.pt` is
    resumed only when it matches. `restore_from` instead starts from another run's checkpoint (population-
    based training) and applies `hyperparameters` (the model's params) after the restore. When this
    returns, `model` holds the selected weights and `run_dir/model.pt` exists; with `finish=False` (one
    generation of a population member) `model` holds the last weights and `training/last.pt` stays, for
    the next generation to restore, and no best.pt or model.pt is written.
    """
    run_dir, device = Path(run_dir), resolve_device(device)
    torch.manual_seed(seed)
    if device.type == "cpu":
        keep_freed_memory()
    model.to(device)
    optimizer, shuffler, loop = start_run(
        model, settings, run_dir=run_dir, seed=seed, device=device, identity=identity,
        graphed=use_graph(model, settings, device), restore_from=restore_from, hyperparameters=hyperparameters,
    )
    train_batch = batch_from(prepared.train, device)
    valid_batch = batch_from(prepared.valid, device)
    step = make_step(model, optimizer, settings, device, train_batch)
    report = EpochReport(settings, loop.epoch)
    with CheckpointWriter(run_dir, settings.checkpoint_every_s, keep_best=finish) as writer:
        while loop.epoch < settings.epochs and not loop.stopped:
            tic = time.monotonic()
            progress = Progress(epoch=loop.epoch, total_epochs=settings.epochs)
            model.train()
            order = torch.randperm(len(train_batch), generator=shuffler)
            sums, n_batches = {}, 0
            for batch_rows, lr_factor in epoch_batches(order, settings, loop, len(train_batch), step.drops_last):
                set_lr(optimizer, settings.learning_rate * loop.lr_factor * lr_factor, settings.weight_decay)
                result = step(train_batch.select(batch_rows.to(device)), progress)
                accumulate(sums, {"loss": result.loss, **result.terms})
                n_batches += 1
            model.eval()
            with torch.no_grad():
                valid = model.validation_step(valid_batch, progress)
            means = epoch_means(sums, n_batches, {"loss": valid.loss, **valid.terms})
            end_epoch(loop, settings, means, seconds=time.monotonic() - tic, lr=get_lr(optimizer), writer=writer,
                      payload=lambda: training_payload(model, optimizer, shuffler, loop, identity), report=report)
    report.close()
    if not finish:
        return FitResult(history=loop.history, selected="last", epoch=loop.epoch, epochs_run=loop.epoch)
    selected, epoch = finish_run(model, run_dir, settings.select, identity, device, loop.epoch)
    return FitResult(history=loop.history, selected=selected, epoch=epoch, epochs_run=loop.epoch)


def start_run(model, settings, *, run_dir, seed, device, identity, graphed=False, restore_from=None,
              hyperparameters=None, generator=None):
    """A run's optimiser, batch shuffler and loop state: fresh, or resumed from its `training/last.pt`
    when that matches `identity` (or from `restore_from`, with `hyperparameters` applied after), RNG
    states included (into `generator` when the run draws from one of its own: training/stacked.py)."""
    optimizer = make_optimizer(model, settings, graphed=graphed)
    shuffler = torch.Generator().manual_seed(seed)
    loop = LoopState()
    source = restore_from or Path(run_dir) / STATE_DIR / "last.pt"
    checkpoint = load_checkpoint(source, None if restore_from else identity, device)
    if checkpoint is not None:
        restore_training(checkpoint, model, optimizer, shuffler, loop, generator)
        print(f"resumed from {source} at epoch {loop.epoch}/{settings.epochs}", flush=True)
        if hyperparameters is not None and hasattr(model, "set_hyperparameters"):
            model.set_hyperparameters(hyperparameters)
    set_lr(optimizer, settings.learning_rate * loop.lr_factor, settings.weight_decay)
    return optimizer, shuffler, loop


def end_epoch(loop, settings, means, *, seconds, lr, writer, payload, report):
    """Close one epoch of a run: its history row (`means`: the train_ and valid_ means), early-stopping
    and plateau state, the checkpoints `writer` (a CheckpointWriter) writes from `payload()` when due,
    and the progress output."""
    row = {"epoch": loop.epoch + 1, **means}
    improved = loop.update(row, settings)
    row.update(seconds=seconds, lr=lr)
    loop.history.append(row)
    writer.epoch_done(loop, improved, payload, final=loop.epoch >= settings.epochs or loop.stopped)
    report.epoch_done(loop)


def epoch_means(train_sums, n_batches, valid_terms):
    """The epoch's train_ means and valid_ values as floats, read from the device in one transfer."""
    values = {f"train_{k}": v for k, v in train_sums.items()} | {f"valid_{k}": v for k, v in valid_terms.items()}
    device = valid_terms["loss"].device
    floats = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values.values()])
    means = dict(zip(values, floats.tolist()))
    for name in train_sums:
        means[f"train_{name}"] /= n_batches
    return means


def accumulate(sums, terms):
    """Add a step's terms to the epoch's sums on the device: no sync until the epoch's end (epoch_means)."""
    for name, value in terms.items():
        value = value.detach().float()
        sums[name] = sums[name] + value if name in sums else value
