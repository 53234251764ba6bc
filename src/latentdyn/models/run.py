"""Train any model kind on a binned dataset and predict from it; load a trained model back.

The one path from a config section to model outputs, used by scripts/train.py and the tests: it asks
the kind (models/kinds.py) what to build and whether the shared trainer fits it.
"""

from pathlib import Path

from latentdyn.data.format import read_model_output
from latentdyn.errors import InputError
from latentdyn.data.prepare import DataShapes, prepare
from latentdyn.models.kinds import get_kind

OUTPUT_FORMAT_VERSION = 2


def train_and_predict(params, data, attrs, *, run_dir, seed, device, data_path="<data>", init_from=None):
    """Fit the model `params` describes (defaults filled) and return (output arrays, output attrs).

    `init_from`: another run's model.pt whose weights (not its optimiser or epoch) this run starts from,
    e.g. dynamics pretrained on fully observed data and adapted here with SBTT.
    """
    kind = get_kind(params["kind"])
    if init_from is not None and not kind.gradient_trained:
        raise InputError(init_from, "<file>", f"a {kind.name} model is not trained by gradient: it cannot start from weights")
    implementation = kind.implementation()
    valid_fraction = params["valid_fraction"] if kind.gradient_trained else None
    unobserved = params.get("unobserved", "skip") if kind.gradient_trained else "skip"
    prepared = prepare(data, attrs, valid_fraction=valid_fraction, seed=seed, path=data_path, unobserved=unobserved)
    output_attrs = {"kind": kind.name, "format_version": OUTPUT_FORMAT_VERSION, "data_shapes": prepared.shapes.as_dict()}
    if kind.gradient_trained:
        import torch

        from latentdyn.training.checkpoints import run_identity
        from latentdyn.training.trainer import TrainerSettings, fit

        torch.manual_seed(seed)
        model = implementation.build(params, prepared.shapes)
        initial_weights = None if init_from is None else load_initial_weights(model, init_from)
        identity = run_identity(kind.name, params, prepared, seed, kind.prediction_only, initial_weights)
        settings = TrainerSettings.from_params(params)
        fit(model, prepared, settings, run_dir=run_dir, seed=seed, device=device, identity=identity)
        output_attrs.update(checkpoint=model.selected_checkpoint, identity=identity)
        if init_from is not None:
            output_attrs["initialised_from"] = str(init_from)
    else:
        from latentdyn.training.checkpoints import FINAL_NAME, save_checkpoint

        model = implementation.fit(implementation.build(params, prepared.shapes), prepared, params)
        save_checkpoint(Path(run_dir) / FINAL_NAME, {"identity": None, "fitted": model})
    outputs = implementation.predict(model, prepared, params, device)
    output_attrs["posterior_samples"] = int(params.get("posterior_samples", 0))
    if "latent_dynamics" in kind.capabilities:
        output_attrs["state_latent"] = implementation.STATE_LATENT
    return outputs, output_attrs


def load_initial_weights(model, path):
    """Load the weights of the finished run at `path` (its model.pt) into `model`; return that run's
    identity. Weights of another architecture or shape are an InputError naming the file."""
    from latentdyn.training.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(path, None, "cpu", required=True)
    if "model" not in checkpoint:
        raise InputError(path, "model", "not the weights of a gradient-trained model")
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()
        raise InputError(path, "model", f"weights do not fit this model: {reason}") from error
    return checkpoint["identity"]


def load_trained(output_path, device="cpu"):
    """The trained model behind a run's output.h5 (its model.pt beside it), and the output's attrs."""
    import torch

    from latentdyn.training.checkpoints import FINAL_NAME, load_checkpoint

    _, attrs = read_model_output(output_path)
    kind = get_kind(attrs["kind"])
    model = kind.implementation().build(attrs["model_params"], DataShapes(**attrs["data_shapes"]))
    checkpoint = load_checkpoint(Path(output_path).parent / FINAL_NAME, attrs.get("identity"), device, required=True)
    model.load_state_dict(checkpoint["model"])
    model.to(torch.device(device)).eval()
    return model, attrs
