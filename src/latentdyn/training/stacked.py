"""Training K models of one shape as one stacked model (a kind with `stacked_training`, kind.yaml).

Each member is a run of its own: its seed (initial weights, batch order, dropout draws from a generator
of its own), its data, its Adam state, learning-rate schedule, early stopping, run identity and outputs.
It writes exactly the files a lone run writes, at the same paths and in the same format
(`training/last.pt`, `best.pt`, history.csv, then model.pt): its checkpoints are made by the lone
trainer's code from a lone model and optimiser holding the member's slices, so a lone run resumes a
member's checkpoint and a member resumes a lone run's. A killed stack resumes every member from its
own last checkpoint, even when they stopped at different epochs.

Nothing couples the members, so one step over the stack is each member's own step: the loss is the sum
of the members' losses (a member's gradient is its own loss's), gradient clipping is per member, and
Adam is per member (`StackedAdam`: its own step count and learning rate; torch's Adam over a stacked
tensor would share both). A member that stops (early stopping, or resumed already finished) stops
changing: its weights, moments and files stay as they are while the others go on; the stack still
computes it, and discards the result, until every member has stopped.

Results equal training each member alone within float rounding (tests/test_stacked_training.py); the
point is speed where one small model leaves the device idle (benchmarks/stacked_training.py).
"""

import time
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from latentdyn.errors import InputError
from latentdyn.models.stacking import member_parameters
from latentdyn.training.checkpoints import CheckpointWriter, finish_run, training_payload
from latentdyn.training.contract import Batch, Progress
from latentdyn.training.device import keep_freed_memory, resolve_device
from latentdyn.training.reporting import EpochReport
from latentdyn.training.schedules import epoch_batches, set_lr
from latentdyn.training.trainer import FitResult, accumulate, batch_from, end_epoch, start_run


@dataclass
class Member:
    """One run of a stack: its lone model (built as its lone run builds it), data and identity."""

    model: torch.nn.Module
    prepared: object  # PreparedData
    run_dir: Path
    seed: int
    identity: str
    data_path: str = "<data>"


def fit_stack(stack, members, settings, *, device):
    """Train `members` as one model, which `stack(models, generators)` (the kind's) builds; one
    `FitResult` per member. Afterwards each member's model holds its selected weights and its run_dir
    its model.pt, as `fit` leaves a lone run."""
    device = resolve_device(device)
    _check_shapes(members)
    if device.type == "cpu":
        keep_freed_memory()
    generators = [torch.Generator(device).manual_seed(member.seed) for member in members]
    runs = [_MemberRun(member, generator, settings, device) for member, generator in zip(members, generators)]
    model = stack([member.model for member in members], generators).to(device)
    optimizer = StackedAdam(model, runs, settings)
    train = stack_batches([batch_from(member.prepared.train, device) for member in members])
    valid = stack_batches([batch_from(member.prepared.valid, device) for member in members])
    with ExitStack() as writers:
        for run in runs:
            writers.enter_context(run.writer)
        train_epochs(model, optimizer, runs, train, valid, settings, device)
    return [run.finish(settings, device) for run in runs]


def train_epochs(model, optimizer, runs, train, valid, settings, device):
    """Train the stack until every member has stopped, each member's epoch closed by its own run."""
    n_trials = train.encoder_input.shape[1]
    while any(run.active for run in runs):
        tic = time.monotonic()
        active = [run.active for run in runs]
        epochs = tuple(run.loop.epoch for run in runs)
        progress = Progress(epoch=min(epochs), total_epochs=settings.epochs, member_epochs=epochs)
        model.train()
        # a stopped member goes through the same batches' shapes; its result is discarded
        schedules = [run.epoch_batches(n_trials) for run in runs]
        sums = {}
        for step in range(len(schedules[0])):
            rows = torch.stack([schedule[step][0] for schedule in schedules]).to(device)
            lrs = [settings.learning_rate * run.loop.lr_factor * schedule[step][1] for run, schedule in zip(runs, schedules)]
            result = model.training_step(select_rows(train, rows), progress)
            optimizer.zero_grad()
            result.loss.sum().backward()
            if settings.grad_clip:
                clip_per_member(list(model.parameters()), settings.grad_clip)
            optimizer.step(lrs, active)
            accumulate(sums, {"loss": result.loss, **result.terms})
        model.eval()
        with torch.no_grad():
            checked = model.validation_step(valid, progress)
        train_sums = {k: v.tolist() for k, v in sums.items()}
        valid_values = {k: v.tolist() for k, v in {"loss": checked.loss, **checked.terms}.items()}
        seconds = time.monotonic() - tic
        for m, run in enumerate(runs):
            if active[m]:
                means = {f"train_{k}": v[m] / len(schedules[0]) for k, v in train_sums.items()}
                means.update({f"valid_{k}": v[m] for k, v in valid_values.items()})
                run.end_epoch(means, seconds, lrs[m], lambda m=m, run=run: run.payload(model, optimizer, m, lrs[m]))


class _MemberRun:
    """A member's own state: optimiser (lone, holding its slices at each checkpoint), shuffler, loop,
    checkpoint writer."""

    def __init__(self, member, generator, settings, device):
        self.member, self.generator, self.settings = member, generator, settings
        member.model.to(device)
        self.optimizer, self.shuffler, self.loop = start_run(
            member.model, settings, run_dir=member.run_dir, seed=member.seed, device=device,
            identity=member.identity, generator=generator,
        )
        self.report = EpochReport(settings, self.loop.epoch, label=str(member.run_dir))
        self.writer = CheckpointWriter(member.run_dir, settings.checkpoint_every_s)

    @property
    def active(self):
        return self.loop.epoch < self.settings.epochs and not self.loop.stopped

    def epoch_batches(self, n_trials):
        """This epoch's (rows, schedule factor) per step: the lone trainer's batches for an active
        member; for a stopped one, rows in order and factor 0, drawing nothing and advancing nothing."""
        if self.active:
            order = torch.randperm(n_trials, generator=self.shuffler)
            return list(epoch_batches(order, self.settings, self.loop, n_trials, drop_last=False))
        return [(rows, 0.0) for rows in torch.arange(n_trials).split(self.settings.batch_size)]

    def end_epoch(self, means, seconds, lr, payload):
        end_epoch(self.loop, self.settings, means, seconds=seconds, lr=lr, writer=self.writer, payload=payload,
                  report=self.report)

    def payload(self, model, optimizer, m, lr):
        """The member's checkpoint, in a lone run's format: its slices put in its lone model and optimiser."""
        with torch.no_grad():
            for stacked, lone in member_parameters(model, self.member.model):
                lone.copy_(stacked[m])
        optimizer.store_member(m, self.optimizer, self.member.model)
        set_lr(self.optimizer, lr, self.settings.weight_decay)
        return training_payload(self.member.model, self.optimizer, self.shuffler, self.loop, self.member.identity,
                                self.generator)

    def finish(self, settings, device):
        self.report.close()
        member = self.member
        selected, epoch = finish_run(member.model, member.run_dir, settings.select, member.identity, device, self.loop.epoch)
        return FitResult(history=self.loop.history, selected=selected, epoch=epoch, epochs_run=self.loop.epoch)


class StackedAdam:
    """Adam or AdamW over a stack's parameters with a step count and learning rate per member; a member
    not active neither steps nor changes its moments.

    The update is torch.optim.Adam's single-tensor one (its CPU default), operation for operation, with
    the per-step scalars (bias corrections, step size) computed per member in double precision as torch
    computes them, so a member's update is its lone run's within float rounding.
    """

    def __init__(self, model, runs, settings):
        self.parameters = list(model.parameters())
        self.settings = settings
        group = runs[0].optimizer.param_groups[0]
        self.betas, self.eps = group["betas"], group["eps"]
        self.exp_avg = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.parameters]
        self.steps = [0] * len(runs)
        for m, run in enumerate(runs):
            self.load_member(m, run.optimizer, run.member.model)
            with torch.no_grad():
                for stacked, lone in member_parameters(model, run.member.model):
                    stacked[m].copy_(lone)

    def zero_grad(self):
        for p in self.parameters:
            p.grad = None

    @torch.no_grad()
    def step(self, lrs, active):
        beta1, beta2 = self.betas
        self.steps = [s + 1 if a else s for s, a in zip(self.steps, active)]
        device = self.parameters[0].device

        def per_member(values):
            return torch.tensor(values, dtype=torch.float32, device=device)

        step_size = per_member([-lr / (1 - beta1**s) if s else 0.0 for lr, s in zip(lrs, self.steps)])
        bias_correction2_sqrt = per_member([(1 - beta2**s) ** 0.5 if s else 1.0 for s in self.steps])
        decay = per_member([1 - lr * self.settings.weight_decay for lr in lrs])
        mask = per_member(active).bool()
        decoupled = self.settings.optimizer == "adamw"
        for p, exp_avg, exp_avg_sq in zip(self.parameters, self.exp_avg, self.exp_avg_sq):
            shape = (-1,) + (1,) * (p.dim() - 1)
            grad = p.grad
            if self.settings.weight_decay and not decoupled:
                grad = grad.add(p, alpha=self.settings.weight_decay)
            new_avg = exp_avg.lerp(grad, 1 - beta1)
            new_avg_sq = exp_avg_sq.mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (new_avg_sq.sqrt() / bias_correction2_sqrt.view(shape)).add_(self.eps)
            start = p * decay.view(shape) if decoupled and self.settings.weight_decay else p
            new_p = start + step_size.view(shape) * new_avg / denom
            for tensor, new in ((p, new_p), (exp_avg, new_avg), (exp_avg_sq, new_avg_sq)):
                tensor.copy_(new if all(active) else torch.where(mask.view(shape), new, tensor))

    def load_member(self, m, optimizer, model):
        """Member m's moments and step count from its lone optimiser (fresh, or restored from a checkpoint)."""
        for i, lone in enumerate(model.parameters()):
            state = optimizer.state.get(lone)
            if state:
                self.exp_avg[i][m].copy_(state["exp_avg"])
                self.exp_avg_sq[i][m].copy_(state["exp_avg_sq"])
                self.steps[m] = int(state["step"])

    def store_member(self, m, optimizer, model):
        """Member m's moments and step count into its lone optimiser, as torch's Adam keeps them."""
        for i, lone in enumerate(model.parameters()):
            optimizer.state[lone] = {
                "step": torch.tensor(float(self.steps[m])),
                "exp_avg": self.exp_avg[i][m].clone(),
                "exp_avg_sq": self.exp_avg_sq[i][m].clone(),
            }


def clip_per_member(parameters, max_norm):
    """`clip_grad_norm_` for each member on its own: the norm over its slices of every gradient."""
    norms = torch.stack([torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in parameters])
    coefficient = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)
    for p in parameters:
        p.grad.mul_(coefficient.view((-1,) + (1,) * (p.dim() - 1)))


def select_rows(batch, rows):
    """Each member's trials at its own `rows` (members × batch size) of a member-first Batch."""

    def take(value):
        if isinstance(value, torch.Tensor):
            index = rows.view(rows.shape + (1,) * (value.dim() - 2)).expand(*rows.shape, *value.shape[2:])
            return value.gather(1, index)
        if isinstance(value, dict):
            return {k: take(v) for k, v in value.items()}
        return value

    return Batch(**{f.name: take(getattr(batch, f.name)) for f in fields(Batch)})


def stack_batches(batches):
    """One Batch of the members' batches, each field member-first."""

    def stacked(values):
        if isinstance(values[0], torch.Tensor):
            return torch.stack(values)
        if isinstance(values[0], dict):
            return {key: stacked([value[key] for value in values]) for key in values[0]}
        return values[0]

    return Batch(**{f.name: stacked([getattr(batch, f.name) for batch in batches]) for f in fields(Batch)})


def _check_shapes(members):
    """Members stack only with splits of one shape; another is an InputError naming its data."""
    first = members[0]
    for member in members[1:]:
        for split in ("train", "valid"):
            for name in ("encoder_input", "target"):
                mine, theirs = getattr(getattr(member.prepared, split), name).shape, getattr(getattr(first.prepared, split), name).shape
                if mine != theirs:
                    raise InputError(member.data_path, f"{split} {name}",
                                     f"shape {mine} differs from {theirs} of {first.data_path}: it cannot train in one stack with it")
