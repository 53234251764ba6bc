"""Every registered model kind keeps the kind contract (models/kind_contract.py), checked by running it.

Parametrised over `kind_names()`, so a new kind is tested by adding its package: built from its
schema's defaults on tiny random counts, trained a few epochs (or fitted), its predictions valid
output, its capabilities usable, an interrupted training resumed to exactly the uninterrupted
result, and a kind that trains in stacks giving each run of a stack what it gives that run alone. The contract's own errors are tested on deliberately broken kinds at the end.
"""

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from random_counts import poisson_counts
from test_lfads import one_thread  # noqa: F401 (autouse fixture)

from latentdyn.data.format import state_latents, validate_model_output
from latentdyn.data.prepare import prepare
from latentdyn.errors import ConfigError
from latentdyn.models.kind_contract import check_implementation, check_model
from latentdyn.models.kinds import get_kind, kind_names, kind_packages, resolve_model
from latentdyn.models.pipeline import StackMember, predict, train, train_and_predict, train_stack
from latentdyn.training.checkpoints import FINAL_NAME, STATE_DIR
from workflow_api import TINY_CONFIG, run_workflow

# 8 output units, so that NDT's default two heads divide its identity-embedding width
DATA = poisson_counts({"train": 24, "eval": 6}, heldout=3, heldin=5, bins=8, forward_bins=3, seed=0)
ATTRS = {"dataset": "random", "bin_width_s": 0.02}
# values for params a kind's schema requires and gives no default for, by param name
REQUIRED_FALLBACK = {"dynamics": "gru", "latent_size": 3, "learning_rate": 1e-2, "kernel_sd_ms": 40.0}
# params whose defaults are too big for a test, by param name: a population search of two workers
SMALL_OVERRIDES = {"pbt": {"workers": 2, "generation_epochs": 2}}
EPOCHS = 4
# Kinds that train on Ray (a population search) resume in their own way, tested beside them
# (test_autolfads.py); the rest resume through the trainer, those with their own `train` included.
GRADIENT_KINDS = [
    name for name in kind_names() if get_kind(name).gradient_trained and "ray_cluster" not in get_kind(name).capabilities
]
TOY_KIND = Path(__file__).parent / "fixtures" / "toy_kind"  # a kind in its own package


def tiny_params(name):
    """The kind's schema defaults, its required params from REQUIRED_FALLBACK and, for a gradient-trained
    kind, a few epochs of small batches: trainer settings every such kind shares."""
    kind = get_kind(name)
    params = {"kind": name}
    if kind.gradient_trained:
        params.update(epochs=EPOCHS, batch_size=8)
    missing = [key for key in kind.schema["required"] if key not in params and key not in REQUIRED_FALLBACK]
    if missing:
        pytest.fail(f"model kind '{name}' requires {missing} without defaults: add small values to REQUIRED_FALLBACK")
    params.update({key: REQUIRED_FALLBACK[key] for key in kind.schema["required"] if key not in params})
    params.update({key: value for key, value in SMALL_OVERRIDES.items() if key in kind.schema["properties"]})
    return kind.resolve(params)


def run(params, run_dir, data=DATA, attrs=ATTRS):
    return train_and_predict(params, data, attrs, run_dir=run_dir, seed=0, device="cpu")


def assert_kind_conforms(name, run_dir):
    """Train (or fit) kind `name` on tiny data and check what the pipeline and analyses rely on."""
    kind = get_kind(name)
    params = tiny_params(name)
    implementation = kind.implementation()
    shapes = prepare(DATA, ATTRS, valid_fraction=0.2, seed=0).shapes
    model = implementation.build(params, shapes)
    check_model(kind, model)
    outputs, attrs = run(params, run_dir)
    validate_model_output(outputs, DATA, f"<{name} output>")  # shapes of every split, finite, non-negative
    assert (run_dir / FINAL_NAME).exists() and not (run_dir / STATE_DIR).exists()
    n_trials = len(DATA["eval_spikes_heldin"])
    if "latent_dynamics" in kind.capabilities:
        state = state_latents(outputs, attrs, "eval")
        assert state is not None and state.shape[0] == n_trials, "the output holds no state latent"
        probe = torch.zeros(2, state.shape[-1])
        with torch.no_grad():
            assert model.dynamics.step(probe).shape == probe.shape
            assert model.dynamics.fixed_point_residual(probe).shape == probe.shape
    if "code_generation" in kind.capabilities:
        codes = torch.as_tensor(outputs[f"latents/eval_{implementation.CODE_LATENT}"])
        generated = implementation.generate(model, codes)
        assert generated.shape == (n_trials, shapes.n_recon_bins, shapes.n_output)
        assert torch.isfinite(generated).all() and (generated >= 0).all()
    if "realtime_inference" in kind.capabilities:
        model.eval()
        with torch.no_grad():
            rates = implementation.infer_rates(model, torch.as_tensor(DATA["eval_spikes_heldin"]))
        assert rates.shape == (n_trials, shapes.n_recon_bins, shapes.n_output)
        assert torch.isfinite(rates).all() and (rates >= 0).all()


@pytest.mark.parametrize("name", kind_names())
def test_kind_trains_predicts_and_keeps_its_capabilities(name, tmp_path):
    assert_kind_conforms(name, tmp_path)


STACKING_KINDS = [name for name in kind_names() if "stacked_training" in get_kind(name).capabilities]


@pytest.mark.parametrize("name", STACKING_KINDS)
def test_each_run_of_a_stack_predicts_as_it_would_alone(name, tmp_path):
    """Two seeds and two datasets of one shape in one stack; a rerun keeps the runs already trained."""
    params = tiny_params(name)
    other = poisson_counts({"train": 24, "eval": 6}, heldout=3, heldin=5, bins=8, forward_bins=3, seed=1)
    runs = [StackMember(data, ATTRS, f"data{seed}", seed, tmp_path / "stack" / str(seed)) for data, seed in ((DATA, 0), (other, 1))]
    paths = train_stack(params, runs, device="cpu")
    for run, path in zip(runs, paths):
        alone = train(params, run.data, ATTRS, run_dir=tmp_path / "alone" / str(run.seed), seed=run.seed, device="cpu",
                      data_path=run.data_path)
        stacked_out, stacked_attrs = predict(params, run.data, ATTRS, model_path=path, seed=run.seed, device="cpu")
        alone_out, alone_attrs = predict(params, run.data, ATTRS, model_path=alone, seed=run.seed, device="cpu")
        assert stacked_attrs == alone_attrs
        for key, value in alone_out.items():
            np.testing.assert_allclose(stacked_out[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    written = paths[1].stat().st_mtime_ns
    paths[0].unlink()
    train_stack(params, runs, device="cpu")
    assert paths[0].exists() and paths[1].stat().st_mtime_ns == written


class Interrupted(Exception):
    pass


def interrupted_at(build, epoch):
    """`build`, with the built model's training raising Interrupted when it reaches `epoch`: a killed job."""

    def build_then_interrupt(params, shapes):
        model = build(params, shapes)
        training_step = model.training_step

        def step_until_killed(batch, progress):
            if progress.epoch == epoch:
                raise Interrupted
            return training_step(batch, progress)

        model.training_step = step_until_killed
        return model

    return build_then_interrupt


def assert_resumes_exactly(name, tmp_path, monkeypatch, capsys, params=None, data=DATA, attrs=ATTRS):
    """Training of kind `name` (with `params`, tiny ones by default, on `data`) killed halfway and rerun
    gives the outputs of an uninterrupted run."""
    params = {**(params or tiny_params(name)), "checkpoint_every_s": 0}  # checkpoints every epoch: the kill leaves last.pt at its epoch
    straight, _ = run(params, tmp_path / "straight", data, attrs)
    implementation = get_kind(name).implementation()
    with monkeypatch.context() as patch:
        patch.setattr(implementation, "build", interrupted_at(implementation.build, EPOCHS // 2))
        with pytest.raises(Interrupted):
            train(params, data, attrs, run_dir=tmp_path / "resumed", seed=0, device="cpu")
    last = torch.load(tmp_path / "resumed" / STATE_DIR / "last.pt", weights_only=False)
    assert last["loop"]["epoch"] == EPOCHS // 2
    capsys.readouterr()
    resumed, _ = run(params, tmp_path / "resumed", data, attrs)
    assert f"at epoch {EPOCHS // 2}/{EPOCHS}" in capsys.readouterr().out  # resumed, not retrained from scratch
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert np.array_equal(straight[key], resumed[key]), key


@pytest.mark.parametrize("name", GRADIENT_KINDS)
def test_interrupted_training_resumes_to_the_uninterrupted_result(name, tmp_path, monkeypatch, capsys):
    assert_resumes_exactly(name, tmp_path, monkeypatch, capsys)


@pytest.fixture
def toy_kind_installed(tmp_path, monkeypatch):
    """tests/fixtures/toy_kind installed for this test only: pip builds it offline into a temporary
    directory put on the path of this process and of those it starts; the venv is left untouched."""
    source = shutil.copytree(TOY_KIND, tmp_path / "toy_kind")  # the build writes beside its source
    target = tmp_path / "site-packages"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(source)], check=True)
    monkeypatch.syspath_prepend(target)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])))
    forget_registered_kinds()
    yield "toy"
    forget_registered_kinds()  # so the next lookup, after monkeypatch restores sys.path, has no toy kind
    for module in [name for name in sys.modules if name.startswith("latentdyn_toy_kind")]:
        del sys.modules[module]


def forget_registered_kinds():
    kind_packages.cache_clear()
    get_kind.cache_clear()


def test_a_kind_in_its_own_installed_package_is_found_checked_and_conforms(toy_kind_installed, tmp_path, monkeypatch, capsys):
    name = toy_kind_installed
    assert name in kind_names() and get_kind(name).package == "latentdyn_toy_kind"
    assert resolve_model("m", {"kind": name})["hidden_size"] == 4
    with pytest.raises(ConfigError, match="key 'models.m.hidden_size'"):
        resolve_model("m", {"kind": name, "hidden_size": 0})
    assert_kind_conforms(name, tmp_path / "conforms")
    assert_resumes_exactly(name, tmp_path / "resumes", monkeypatch, capsys)


def test_an_installed_kind_is_trained_scored_and_plotted_by_the_workflow(toy_kind_installed, tmp_path):
    """No file of the project names the toy kind: config alone puts it through every NLB rule."""
    study = {"datasets": ["reaching"], "bin_sizes_ms": [20], "models": ["toy_model", "smoothing"], "seeds": [0]}
    config = {"models": {"toy_model": {"kind": toy_kind_installed, "epochs": 3}}, "attractor_study": None,
              "nlb_study": study}
    jobs = run_workflow(tmp_path, [TINY_CONFIG], config=config, executor="local")
    assert jobs["train"] == jobs["predict"] == jobs["evaluate"] == 2 and jobs["figure_per_run"] == 1
    table = pd.read_csv(tmp_path / "results" / "tables" / "nlb_study.csv")
    toy = table[table["model"] == "toy_model"]
    assert len(toy) == 1 and np.isfinite(toy["co-bps"]).all()
    figures = tmp_path / "results" / "figures"
    assert (figures / "training_curves_reaching_20ms_toy_model.png").stat().st_size > 0
    assert (figures / "nlb_metrics.png").stat().st_size > 0


# The contract's errors: one line naming the kind and the member, before any training.


def without(module, member):
    """A copy of `module` lacking `member`."""
    copy = types.ModuleType(f"broken_{module.__name__}")
    copy.__dict__.update({key: value for key, value in vars(module).items() if key not in (member, "__name__")})
    return copy


def test_a_kind_without_a_member_its_capability_needs_fails_when_loaded_not_after_training(tmp_path, monkeypatch):
    kind = get_kind("sequential_autoencoder")
    module_name = "latentdyn.models.sequential_autoencoder.model"
    broken = without(kind.implementation(), "STATE_LATENT")
    monkeypatch.setitem(sys.modules, module_name, broken)
    with pytest.raises(ConfigError) as error:
        train(tiny_params(kind.name), DATA, ATTRS, run_dir=tmp_path, seed=0, device="cpu")
    assert str(error.value) == (
        f"model kind 'sequential_autoencoder': broken_{module_name} has no STATE_LATENT of type str,"
        " which capability latent_dynamics requires"
    )
    assert not (tmp_path / STATE_DIR).exists()


@pytest.mark.parametrize(
    "name, member, message",
    [
        ("ndt", "predict", "has no predict(model, prepared, params, device), which gradient_trained: true requires"),
        ("smoothing", "fit", "has no fit(model, prepared, params), which gradient_trained: false requires"),
        ("ndt", "infer_rates", "has no infer_rates(model, encoder_input), which capability realtime_inference requires"),
    ],
)
def test_a_kind_without_a_member_fails_naming_the_kind_and_the_member(name, member, message):
    kind = get_kind(name)
    with pytest.raises(ConfigError) as error:
        check_implementation(kind, without(kind.implementation(), member))
    assert str(error.value) == f"model kind '{name}': broken_latentdyn.models.{name}.model {message}"


def test_a_function_that_cannot_take_the_contract_arguments_is_named():
    kind = get_kind("ndt")
    broken = without(kind.implementation(), "predict")
    broken.predict = lambda model, prepared: {}
    with pytest.raises(ConfigError, match=r"\.predict cannot be called as predict\(model, prepared, params, device\)"):
        check_implementation(kind, broken)


def never_reached(self, batch, progress):
    raise AssertionError("the check comes before any step")


class TrainsButCannotValidate(torch.nn.Module):
    training_step = never_reached


class WithoutFixedPointResidual(torch.nn.Module):
    training_step = validation_step = never_reached

    def __init__(self):
        super().__init__()
        self.dynamics = types.SimpleNamespace(step=lambda state: state)


@pytest.mark.parametrize(
    "model, message",
    [
        (TrainsButCannotValidate(), "the model TrainsButCannotValidate has no validation_step(batch, progress),"
         " which gradient_trained: true requires"),
        (WithoutFixedPointResidual(), "the model WithoutFixedPointResidual.dynamics has no fixed_point_residual(state),"
         " which capability latent_dynamics requires"),
        (types.SimpleNamespace(), "the model SimpleNamespace is not a torch.nn.Module, which gradient_trained: true requires"),
    ],
)
def test_a_built_model_without_a_member_fails_before_training(model, message):
    with pytest.raises(ConfigError) as error:
        check_model(get_kind("sequential_autoencoder"), model)
    assert str(error.value) == f"model kind 'sequential_autoencoder': {message}"
