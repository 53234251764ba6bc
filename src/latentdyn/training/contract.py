"""What the shared trainer and a gradient-trained model kind exchange.

A model is an `nn.Module` that owns its step:

    training_step(batch: Batch, progress: Progress) -> StepResult   (train mode, gradients on)
    validation_step(batch: Batch, progress: Progress) -> StepResult (eval mode, no gradients)

The trainer minimises `StepResult.loss` and logs every entry of `StepResult.terms` (scalar tensors: the
reconstruction, each KL, L2, ramp values, ...) as a per-epoch mean; validation terms are logged with a
`valid_` prefix. A model may also define `set_hyperparameters(params)`, called after a restore so that
hyperparameters changed since the checkpoint (dropout, KL/L2 scales, CD rate) take effect; the trainer
applies learning rate and weight decay itself. Steps must not call `.item()` or branch on tensor values,
so that the whole step can be captured in a CUDA graph.

A kind that can train K models of one shape as one (kind.yaml `stacked_training`; training/stacked.py)
has `stack(models, generators)` in its model.py, returning a model with the same two steps over
member-first tensors: every Batch field gains a leading member dimension, `Progress.member_epochs`
gives each member's epoch, and `StepResult.loss` and every term hold one value per member. Member m's
random draws come from `generators[m]`. Its parameters are the members' parameters under the same
names, stacked on a new first dimension (models/stacking.py builds such a model from the members).
"""

from dataclasses import dataclass, field, fields

import torch

from latentdyn.training.device import resolve_device


@dataclass
class Batch:
    """A batch of trials. NaN marks an unobserved entry, in the input and in the target alike.

    `encoder_input` is what the model reads (held-in units over the window); `target` is what it
    reconstructs (held-in then held-out units, over the window then the forward bins), so the two
    differ in units and bins. `trial_index` is each trial's row in its split: per-trial masks (sample
    validation) are seeded with it, never with batch position. On stitched multisession data
    (data/stitch.py: a row holds one trial of every session) it is rows × sessions, each session's own trial.
    """

    encoder_input: torch.Tensor  # trials × input bins × input units
    target: torch.Tensor  # trials × reconstructed bins × reconstructed units
    trial_index: torch.Tensor  # trials (int64); trials × sessions on stitched data
    ext_input: torch.Tensor | None = None  # trials × reconstructed bins × external inputs
    session: torch.Tensor | None = None  # trials (int64)
    truth: dict = field(default_factory=dict)  # name -> tensor, where the data has ground truth

    @property
    def observed(self):
        """Boolean mask of the target entries that were observed."""
        return ~torch.isnan(self.target)

    def to(self, device):
        """The batch on `device` ('auto' allowed)."""
        device = resolve_device(device)

        def move(value):
            if isinstance(value, torch.Tensor):
                return value.to(device, non_blocking=True)
            if isinstance(value, dict):
                return {k: move(v) for k, v in value.items()}
            return value

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def select(self, index):
        """The trials at `index` (a tensor of row positions)."""

        def take(value):
            if isinstance(value, torch.Tensor):
                return value[index]
            if isinstance(value, dict):
                return {k: take(v) for k, v in value.items()}
            return value

        return Batch(**{f.name: take(getattr(self, f.name)) for f in fields(self)})

    def __len__(self):
        return len(self.encoder_input)


@dataclass
class Progress:
    """Where training is: the 0-based epoch, used by ramps and curricula."""

    epoch: int
    total_epochs: int
    epoch_tensor: torch.Tensor | None = None
    """The epoch as a device tensor, given by the CUDA-graphed step (training/steps.py) so that ramps
    computed from it stay correct inside the captured graph, where the int `epoch` would stay at its
    value at capture. None on the eager path, where ramps use `epoch`."""
    member_epochs: tuple | None = None
    """A stack's: each member's 0-based epoch (members resumed from different checkpoints may be at
    different epochs); None for a lone model."""


@dataclass
class StepResult:
    loss: torch.Tensor
    terms: dict = field(default_factory=dict)
