"""The one prediction loop of the torch model kinds: every split, a chunk of trials at a time.

A kind says only what one pass gives (`infer`); the loop owns eval mode, chunking, moving each chunk's
results off the device at once (outputs kept on a GPU ran lfads-torch out of memory, its issue #27)
and naming the outputs as docs/formats.md wants them.
"""

import numpy as np
import torch

from latentdyn.data.prepare import split_rates
from latentdyn.training.device import resolve_device


@torch.no_grad()
def predict_in_chunks(model, prepared, device, infer, rows_per_chunk):
    """Rates and latents of every split of `prepared`, in eval mode, `rows_per_chunk` trials at a time.

    `infer(model, encoder_input, ext_input)` gets a chunk's encoder input and its external inputs
    (None when the data has none) on `device` and returns a dict of tensors, trials first: `rates` over (window + forward bins) × (held-in + held-out units), and any
    latents by name, which become `latents/{split}_{name}`. A latent with no dimensions (an LFADS
    without controller has no inferred inputs) is left out. `device`: 'auto' allowed, so every kind's
    `predict` accepts it.
    """
    device = resolve_device(device)
    model.to(device).eval()
    outputs = {}
    for split, arrays in prepared.splits.items():
        inputs = torch.as_tensor(arrays.encoder_input).split(rows_per_chunk)
        external = [None] * len(inputs) if arrays.ext_input is None else torch.as_tensor(arrays.ext_input).split(rows_per_chunk)
        chunks = [
            {name: value.cpu().numpy() for name, value in infer(model, rows.to(device), _to(ext, device)).items()}
            for rows, ext in zip(inputs, external)
        ]
        merged = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
        outputs.update(split_rates(merged.pop("rates"), prepared.shapes, split))
        outputs.update({f"latents/{split}_{name}": value for name, value in merged.items() if value.shape[-1]})
    return outputs


def _to(value, device):
    return None if value is None else value.to(device)
