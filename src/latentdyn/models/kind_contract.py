"""What a model kind's code must provide, as Protocols, and the checks that hold a kind to them early.

A kind's `model.py` is checked when it is loaded (`check_implementation`, from
`ModelKind.implementation`) and its model right after `build` (`check_model`), so a kind lacking a
member that its kind.yaml promises fails at once with one line naming the kind and the member, not
with an AttributeError after hours of training. What the shared trainer and a model exchange in a step
(Batch, Progress, StepResult) is training/contract.py.

Protocols describing a module (`TrainableKind`, ...) are written with `self`, as PEP 544 has it for
modules: the module's functions take the other parameters.
"""

import inspect
from typing import TYPE_CHECKING, Protocol

from latentdyn.errors import ConfigError

if TYPE_CHECKING:
    from latentdyn.data.prepare import DataShapes, PreparedData
    from latentdyn.training.contract import Batch, Progress, StepResult


class KindModule(Protocol):
    """`model.py` of every kind."""

    def build(self, params: dict, shapes: "DataShapes"):
        """A fresh model for data of `shapes`, from the kind's params with every default filled."""

    def predict(self, model, prepared: "PreparedData", params: dict, device) -> dict:
        """Output arrays of every split of `prepared` (docs/formats.md) from a trained or fitted model."""


class TrainableKind(KindModule, Protocol):
    """`model.py` of a kind fitted by the shared trainer (kind.yaml: `gradient_trained: true`)."""

    def build(self, params: dict, shapes: "DataShapes") -> "TrainableModel":
        """A fresh, untrained model; the trainer seeds torch before calling it."""

    # Optional: `train(model, prepared, params, *, run_dir, seed, device, identity)`, called instead of one
    # `training.trainer.fit` when the kind drives the shared trainer itself (a population search: autolfads).
    # It leaves `model` holding the weights to predict from and writes `run_dir/model.pt` as `fit` does.


class FittedKind(KindModule, Protocol):
    """`model.py` of a kind not trained by gradient (kind.yaml: `gradient_trained: false`)."""

    def fit(self, model, prepared: "PreparedData", params: dict):
        """The model fitted on `prepared.train`; it is pickled into the run's model.pt."""


class LatentDynamicsKind(Protocol):
    """`model.py` of a kind with capability `latent_dynamics`."""

    STATE_LATENT: str  # the latent of `predict`'s output (latents/{split}_<name>) that is the dynamical state


class RealtimeInferenceKind(Protocol):
    """`model.py` of a kind with capability `realtime_inference`."""

    def infer_rates(self, model, encoder_input):
        """Rates of one pass over a batch of trials (tensor in, tensor out): what the latency study times."""


class StackedTrainingKind(Protocol):
    """`model.py` of a kind with capability `stacked_training` (training/contract.py, training/stacked.py)."""

    def stack(self, models, generators):
        """One model training the K `models` (one params, one data shape) at once, member m drawing its
        random numbers from `generators[m]`."""


class CodeGenerationKind(Protocol):
    """`model.py` of a kind with capability `code_generation`."""

    CODE_LATENT: str  # the latent of `predict`'s output (latents/{split}_<name>, trials × code size): each trial's code

    def generate(self, model, codes):
        """Rates (trials × window and forward bins × held-in and held-out units, a tensor) of one trial
        generated from each code (trials × code size, a tensor on the model's device)."""


class TrainableModel(Protocol):
    """What `build` of a gradient-trained kind returns, besides being a `torch.nn.Module`.

    It may also define `set_hyperparameters(params)`, which the trainer calls after a restore.
    """

    def training_step(self, batch: "Batch", progress: "Progress") -> "StepResult":
        """The loss and logged terms of one training batch (train mode, gradients on)."""

    def validation_step(self, batch: "Batch", progress: "Progress") -> "StepResult":
        """The loss and logged terms of the validation trials (eval mode, no gradients)."""


class Dynamics(Protocol):
    """A model's latent dynamics, as fixed-point analysis (metrics/fixed_points.py) uses them."""

    def step(self, state):
        """The state one bin later (states: trials × latent size)."""

    def fixed_point_residual(self, state):
        """Zero exactly at the dynamics' fixed points."""


class LatentDynamicsModel(Protocol):
    """The model of a kind with capability `latent_dynamics`."""

    dynamics: Dynamics


MODULE_CAPABILITIES = {
    "latent_dynamics": LatentDynamicsKind,
    "realtime_inference": RealtimeInferenceKind,
    "stacked_training": StackedTrainingKind,
    "code_generation": CodeGenerationKind,
}
MODEL_CAPABILITIES = {"latent_dynamics": LatentDynamicsModel}


def check_implementation(kind, module):
    """Raise ConfigError if `module` (the `model.py` of `kind`, a ModelKind) lacks a member it must have."""
    if kind.gradient_trained:
        _check(kind, module, module.__name__, TrainableKind, "gradient_trained: true")
    else:
        _check(kind, module, module.__name__, FittedKind, "gradient_trained: false")
    for capability in sorted(kind.capabilities & MODULE_CAPABILITIES.keys()):
        _check(kind, module, module.__name__, MODULE_CAPABILITIES[capability], f"capability {capability}")


def check_model(kind, model):
    """Raise ConfigError if `model`, just built by `kind`, lacks a member it must have: run before training."""
    where = f"the model {type(model).__name__}"
    if kind.gradient_trained:
        from torch import nn

        if not isinstance(model, nn.Module):
            _fail(kind, f"{where} is not a torch.nn.Module", "gradient_trained: true")
        _check(kind, model, where, TrainableModel, "gradient_trained: true")
    for capability in sorted(kind.capabilities & MODEL_CAPABILITIES.keys()):
        _check(kind, model, where, MODEL_CAPABILITIES[capability], f"capability {capability}")


def _check(kind, subject, where, protocol, required_by):
    """Every member of `protocol` on `subject`: attributes of their annotated type (a nested Protocol
    checked member by member), functions callable with the protocol's parameters."""
    for name, expected in _members(protocol).items():
        value = getattr(subject, name, None)
        if inspect.isfunction(expected):
            parameters = list(inspect.signature(expected).parameters)[1:]  # without self
            wanted = f"{name}({', '.join(parameters)})"
            if not callable(value):
                _fail(kind, f"{where} has no {wanted}", required_by)
            if not _accepts(value, len(parameters)):
                _fail(kind, f"{where}.{name} cannot be called as {wanted}", required_by)
        elif getattr(expected, "_is_protocol", False):
            if value is None:
                _fail(kind, f"{where} has no {name}", required_by)
            _check(kind, value, f"{where}.{name}", expected, required_by)
        elif not isinstance(value, expected):
            _fail(kind, f"{where} has no {name} of type {expected.__name__}", required_by)


def _members(protocol):
    """name -> function (a method) or type (an annotated attribute), the bases' members first."""
    members = {}
    for cls in reversed(protocol.__mro__):
        if getattr(cls, "_is_protocol", False) and cls is not Protocol:
            members.update(vars(cls).get("__annotations__", {}))
            members.update({name: value for name, value in vars(cls).items() if inspect.isfunction(value) and not name.startswith("_")})
    return members


def _accepts(function, n_positional):
    """Whether `function` can be called with `n_positional` arguments; True when it shows no signature
    (some builtins), as the call itself will tell."""
    try:
        signature = inspect.signature(function)
    except ValueError:
        return True
    try:
        signature.bind(*range(n_positional))
    except TypeError:
        return False
    return True


def _fail(kind, problem, required_by):
    raise ConfigError(f"model kind '{kind.name}': {problem}, which {required_by} requires")
