"""How the trainer takes one optimiser step: eagerly, or replaying a CUDA graph of the whole step.

On a GPU, a model with `graph_safe = True` has its whole training step (forward, backward, clipping,
optimiser step) captured once in a CUDA graph and replayed; batches then have a fixed size and the
last partial batch of each epoch is dropped (`drops_last`).
"""

from dataclasses import replace

import torch

from latentdyn.training.device import resolve_device


def use_graph(model, settings, device):
    """Whether `model` trains through a CUDA graph on `device`."""
    return settings.cuda_graph and resolve_device(device).type == "cuda" and getattr(model, "graph_safe", False)


def make_step(model, optimizer, settings, device, train_batch):
    """The step callable `(batch, progress) -> detached StepResult` for this model and device."""
    if use_graph(model, settings, device):
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
    (`Progress.epoch_tensor`), which a graph-safe model uses for its ramps.
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
        progress = replace(progress, epoch_tensor=self.epoch_tensor)
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
    """Refill the captured graph's input tensors in place: a replay reads only those addresses."""
    static.encoder_input.copy_(batch.encoder_input)
    static.target.copy_(batch.target)
    static.trial_index.copy_(batch.trial_index)
    if batch.ext_input is not None:
        static.ext_input.copy_(batch.ext_input)
    for key, value in batch.truth.items():
        static.truth[key].copy_(value)


def _detached(result, clone=False):
    """The step's result without its graph; cloned when the next replay would overwrite it."""

    def detach(value):
        value = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value)
        return value.clone() if clone else value

    return type(result)(detach(result.loss), {k: detach(v) for k, v in result.terms.items()})
