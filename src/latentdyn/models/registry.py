"""Model kinds by config name.

A model kind is a function
    fit_predict(data, attrs, params, *, run_dir, seed, device) -> dict of output arrays
taking a binned dataset (`data`, `attrs` as from `read_binned`), the model's config section `params`,
a run directory for checkpoints and history, a seed and a torch device string, and returning the
model-output arrays of docs/formats.md (submission keys, rates in spikes per bin).
"""

import importlib

# kind -> "module:function", imported lazily so light rules do not import torch.
MODEL_KINDS = {
    "sequential_autoencoder": "latentdyn.models.sequential_autoencoder:fit_predict",
    "smoothing": "latentdyn.models.smoothing:fit_predict",
}


def get_model_kind(kind):
    if kind not in MODEL_KINDS:
        raise KeyError(f"unknown model kind '{kind}'; known: {sorted(MODEL_KINDS)}")
    module_name, function_name = MODEL_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), function_name)
