"""What decides the learning rate and when training stops: the loop's resumable state (early stopping,
plateau), the warm-up/cosine factor of each optimiser step, and the optimiser itself."""

import math

import torch


class LoopState:
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


def epoch_batches(order, settings, loop, n_trials, drop_last):
    """Row indices of each batch, with the warm-up/cosine factor for that optimiser step (counted in
    `loop.steps`, so a resumed run continues the schedule)."""
    size = settings.batch_size if not drop_last else min(settings.batch_size, n_trials)
    chunks = order.split(size)
    if drop_last and len(chunks[-1]) < size:
        chunks = chunks[:-1]
    steps_per_epoch = len(chunks)
    for rows in chunks:
        yield rows, schedule_factor(settings, loop.steps, steps_per_epoch)
        loop.steps += 1


def schedule_factor(settings, step, steps_per_epoch):
    """The warm-up/cosine multiplier of the learning rate at optimiser step `step` (1 for other schedulers)."""
    scheduler = settings.scheduler or {}
    if scheduler.get("kind") != "warmup_cosine":
        return 1.0
    warmup = scheduler.get("warmup_epochs", 0) * steps_per_epoch
    total = settings.epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def make_optimizer(model, settings, graphed):
    """Adam or AdamW; a graphed step needs its learning rate as a device tensor (`capturable`)."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
    lr = torch.tensor(settings.learning_rate, device=next(model.parameters()).device) if graphed else settings.learning_rate
    extra = {"capturable": True} if graphed else {}
    return kind(model.parameters(), lr=lr, weight_decay=settings.weight_decay, eps=settings.adam_epsilon, **extra)


def set_lr(optimizer, lr, weight_decay):
    """Set every group's learning rate (in place when it is a captured tensor) and weight decay."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
        group["weight_decay"] = weight_decay


def get_lr(optimizer):
    return float(optimizer.param_groups[0]["lr"])
