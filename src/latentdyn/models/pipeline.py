"""Train any model kind on a binned dataset, then predict from the trained model: two steps, one file
between them.

`train` leaves the run's `model.pt` (the selected weights of a gradient-trained kind, the fitted state
of any other) and nothing else; `predict` reads it back and returns the output arrays. The workflow runs
them as separate jobs, so a prediction that fails or is killed (a cluster time limit during posterior
sampling, a full disk, a predict-time error) never discards a finished training: the rerun redoes only
the prediction. `model.pt` records the run's identity (training/checkpoints.py), and `predict` refuses
one trained on other data, another model or another seed. Both steps ask the kind (models/kinds.py) what
to build and whether the shared trainer fits it.

`train_stack` trains several runs of one model (other seeds, other datasets of one shape) as one
stacked model when the kind can (capability stacked_training; training/stacked.py); each run's
model.pt is the one `train` would have written, within float rounding, so `predict` is the same.
"""

from dataclasses import dataclass
from pathlib import Path

from latentdyn.data.format import check_counts, read_model_output
from latentdyn.data.prepare import DataShapes, prepare
from latentdyn.errors import ConfigError, InputError
from latentdyn.models.kind_contract import check_model
from latentdyn.models.kinds import get_kind

OUTPUT_FORMAT_VERSION = 2


@dataclass(frozen=True)
class _Run:
    """What both steps derive from the same inputs: the kind, the prepared data, the run's identity."""

    kind: object
    prepared: object
    identity: str
    pretrained: dict | None  # the checkpoint of the run whose weights this one starts from


def _run(params, data, attrs, *, seed, data_path, init_from):
    from latentdyn.training.checkpoints import load_checkpoint, run_identity

    kind = get_kind(params["kind"])
    pretrained = None
    if init_from is not None:
        if not kind.gradient_trained:
            raise InputError(init_from, "<file>", f"a {kind.name} model is not trained by gradient: it cannot start from weights")
        pretrained = load_checkpoint(init_from, None, "cpu", required=True)
        if "model" not in pretrained:
            raise InputError(init_from, "model", "not the weights of a gradient-trained model")
    if kind.needs_counts(params):
        check_counts(data, data_path)
    valid_fraction = params["valid_fraction"] if kind.gradient_trained else None
    unobserved = params.get("unobserved", "skip") if kind.gradient_trained else "skip"
    prepared = prepare(data, attrs, valid_fraction=valid_fraction, seed=seed, path=data_path, unobserved=unobserved)
    initial_identity = None if pretrained is None else pretrained["identity"]
    identity = run_identity(kind.name, params, prepared, seed, kind.prediction_only, initial_identity)
    return _Run(kind, prepared, identity, pretrained)


def train(params, data, attrs, *, run_dir, seed, device="auto", data_path="<data>", init_from=None):
    """Fit the model `params` describes (defaults filled) on `data`; write and return `run_dir/model.pt`.

    `init_from`: another run's model.pt whose weights (not its optimiser or epoch) this run starts from,
    e.g. dynamics pretrained on fully observed data and adapted here with SBTT.
    """
    from latentdyn.training.checkpoints import FINAL_NAME, save_checkpoint

    run = _run(params, data, attrs, seed=seed, data_path=data_path, init_from=init_from)
    implementation = run.kind.implementation()
    model_path = Path(run_dir) / FINAL_NAME
    if run.kind.gradient_trained:
        import torch

        from latentdyn.training.device import resolve_device
        from latentdyn.training.trainer import TrainerSettings, fit

        model = _untrained(run, params, seed)
        if run.pretrained is not None:
            _load_weights(model, run.pretrained["model"], init_from)
        if hasattr(implementation, "train"):  # the kind drives the trainer itself (kind_contract.TrainableKind)
            implementation.train(model, run.prepared, params, run_dir=run_dir, seed=seed, device=resolve_device(device),
                                 identity=run.identity)
        else:
            fit(model, run.prepared, TrainerSettings.from_params(params), run_dir=run_dir, seed=seed, device=device,
                identity=run.identity)
    else:
        model = implementation.fit(implementation.build(params, run.prepared.shapes), run.prepared, params)
        save_checkpoint(model_path, {"identity": run.identity, "fitted": model})
    return model_path


@dataclass(frozen=True)
class StackMember:
    """One run of a stack: its dataset (arrays, attrs, path), seed and run directory."""

    data: dict
    attrs: dict
    data_path: str
    seed: int
    run_dir: Path


def train_stack(params, stack_members, *, device="auto"):
    """Train the runs `stack_members` of the model `params` as one stack; return their model.pt paths.

    A run whose model.pt already holds that run (same identity: settings, data, seed) is kept as it is,
    so that a stack rerun for one missing run trains that run alone; every other run trains, from its
    `training/last.pt` where one matches.
    """
    from latentdyn.training.checkpoints import FINAL_NAME, load_checkpoint
    from latentdyn.training.stacked import Member, fit_stack
    from latentdyn.training.trainer import TrainerSettings

    kind = get_kind(params["kind"])
    if not kind.stacks(params):
        raise ConfigError(f"config: key 'models.<name>.kind': a {kind.name} model with these settings is not trained in stacks")
    members, paths = [], []
    for member in stack_members:
        run = _run(params, member.data, member.attrs, seed=member.seed, data_path=member.data_path, init_from=None)
        paths.append(Path(member.run_dir) / FINAL_NAME)
        if load_checkpoint(paths[-1], run.identity, "cpu") is not None:
            print(f"{paths[-1]}: already trained with these settings and data; kept", flush=True)
            continue
        model = _untrained(run, params, member.seed)
        members.append(Member(model, run.prepared, Path(member.run_dir), member.seed, run.identity, member.data_path))
    if members:
        print(f"training {len(members)} of {len(stack_members)} runs as one stack", flush=True)
        fit_stack(kind.implementation().stack, members, TrainerSettings.from_params(params), device=device)
    return paths


def _untrained(run, params, seed):
    """The run's fresh model, seeded as every training of it is, checked before any training (a kind
    missing a member fails now, not at the end)."""
    import torch

    torch.manual_seed(seed)
    model = run.kind.implementation().build(params, run.prepared.shapes)
    check_model(run.kind, model)
    return model


def predict(params, data, attrs, *, model_path, seed, device="auto", data_path="<data>", init_from=None):
    """The output arrays (docs/formats.md) and attrs of the model at `model_path`, which `train` wrote
    from the same params, data, seed and `init_from`: any other model.pt is an InputError naming it.

    Random draws (posterior samples) are seeded with `seed`, so predicting twice gives the same output.
    """
    import torch

    from latentdyn.training.checkpoints import describe_selection, load_checkpoint
    from latentdyn.training.device import resolve_device

    device = resolve_device(device)
    run = _run(params, data, attrs, seed=seed, data_path=data_path, init_from=init_from)
    checkpoint = load_checkpoint(model_path, run.identity, device, required=True)
    output_attrs = {
        "kind": run.kind.name,
        "format_version": OUTPUT_FORMAT_VERSION,
        "data_shapes": run.prepared.shapes.as_dict(),
        "identity": run.identity,
        "posterior_samples": int(params.get("posterior_samples", 0)),
    }
    if run.kind.gradient_trained:
        model = _built(run.kind, params, run.prepared.shapes, checkpoint, model_path, device)
        output_attrs["checkpoint"] = describe_selection(checkpoint["selected"], checkpoint["epoch"], checkpoint["epochs_run"])
        if init_from is not None:
            output_attrs["initialised_from"] = str(init_from)
    else:
        model = checkpoint["fitted"]
    implementation = run.kind.implementation()
    if "latent_dynamics" in run.kind.capabilities:
        output_attrs["state_latent"] = implementation.STATE_LATENT
    torch.manual_seed(seed)
    return implementation.predict(model, run.prepared, params, device), output_attrs


def train_and_predict(params, data, attrs, *, run_dir, seed, device="auto", data_path="<data>", init_from=None):
    """`train`, then `predict` from the model it wrote: (output arrays, output attrs)."""
    model_path = train(params, data, attrs, run_dir=run_dir, seed=seed, device=device, data_path=data_path,
                       init_from=init_from)
    return predict(params, data, attrs, model_path=model_path, seed=seed, device=device, data_path=data_path,
                   init_from=init_from)


def load_initial_weights(model, path):
    """Load the weights of the finished run at `path` (its model.pt) into `model`; return that run's
    identity. Weights of another architecture or shape are an InputError naming the file."""
    from latentdyn.training.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(path, None, "cpu", required=True)
    if "model" not in checkpoint:
        raise InputError(path, "model", "not the weights of a gradient-trained model")
    _load_weights(model, checkpoint["model"], path)
    return checkpoint["identity"]


def _load_weights(model, weights, path):
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()
        raise InputError(path, "model", f"weights do not fit this model: {reason}") from error


def _built(kind, params, shapes, checkpoint, path, device):
    """A model of `kind` built from `params` and `shapes`, holding the checkpoint's weights, on `device`
    in eval mode."""
    model = kind.implementation().build(params, shapes)
    _load_weights(model, checkpoint["model"], path)
    return model.to(device).eval()


def load_trained(output_path, device="cpu"):
    """The trained model behind a run's output.h5 (its model.pt beside it), and the output's attrs."""
    from latentdyn.training.checkpoints import FINAL_NAME, load_checkpoint
    from latentdyn.training.device import resolve_device

    device = resolve_device(device)
    _, attrs = read_model_output(output_path)
    kind = get_kind(attrs["kind"])
    model_path = Path(output_path).parent / FINAL_NAME
    checkpoint = load_checkpoint(model_path, attrs.get("identity"), device, required=True)
    return _built(kind, attrs["model_params"], DataShapes(**attrs["data_shapes"]), checkpoint, model_path, device), attrs
