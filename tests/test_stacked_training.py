"""Stacked training (training/stacked.py): K members trained as one equal each trained alone, resume
per member, and write the files a lone run writes."""

import csv

import pytest
import torch

from latentdyn.data.prepare import prepare
from latentdyn.errors import ConfigError, InputError
from latentdyn.models.sequential_autoencoder.model import SequentialAutoencoder, build, stack
from latentdyn.training.checkpoints import FINAL_NAME, STATE_DIR, run_identity
from latentdyn.training.reporting import HISTORY_NAME
from latentdyn.training.stacked import Member, StackedAdam, fit_stack
from latentdyn.training.trainer import TrainerSettings, fit
from test_training import PARAMS, Interrupted, dataset, interrupted_at

# lr high enough that early stopping ends the three members at different epochs (5, 8 and 9 with gru)
STOPPING = {"epochs": 30, "learning_rate": 0.05, "select": "best", "early_stopping": {"patience": 3, "burn_in": 2}}
SETUPS = {
    "gru, adam, clipped": {**PARAMS, **STOPPING, "dynamics": "gru", "curriculum": None, "grad_clip": 0.5},
    "node, adamw, curriculum": {**PARAMS, **STOPPING, "optimizer": "adamw", "weight_decay": 1e-2},
}
SEEDS = (10, 11, 12)


def member(params, index, root, n_trials=32, model_cls=None):
    """Member `index`: its own data and seed, built as a lone run builds it (pipeline.train)."""
    seed = SEEDS[index]
    prepared = prepare(*dataset(index, n_trials), valid_fraction=0.25, seed=seed)
    torch.manual_seed(seed)
    model = build(params, prepared.shapes)
    if model_cls is not None:
        model.__class__ = model_cls
    identity = run_identity("sequential_autoencoder", params, prepared, seed)
    return Member(model, prepared, root / f"member{index}", seed, identity, data_path=f"data{index}.h5")


def train_stack(params, root, model_cls=None):
    members = [member(params, i, root, model_cls=model_cls) for i in range(len(SEEDS))]
    return members, fit_stack(stack, members, TrainerSettings.from_params(params), device="cpu")


def train_alone(params, index, root):
    lone = member(params, index, root)
    result = fit(lone.model, lone.prepared, TrainerSettings.from_params(params), run_dir=lone.run_dir, seed=lone.seed,
                 device="cpu", identity=lone.identity)
    return lone, result


def assert_same_run(a, a_result, b, b_result, exact):
    """Same epochs, selection, history and weights: bit for bit, or within float rounding."""
    assert (a_result.selected, a_result.epoch, a_result.epochs_run) == (b_result.selected, b_result.epoch, b_result.epochs_run)
    columns = ["train_loss", "valid_loss", "valid_loss_smoothed", "lr"]
    for row, other in zip(a_result.history, b_result.history, strict=True):
        for column in columns:
            assert row[column] == (other[column] if exact else pytest.approx(other[column], rel=1e-5, abs=1e-6)), column
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q) if exact else torch.allclose(p, q, rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("setup", SETUPS)
def test_each_member_of_a_stack_trains_as_it_would_alone(tmp_path, setup):
    params = SETUPS[setup]
    members, results = train_stack(params, tmp_path / "stack")
    assert len({result.epochs_run for result in results}) == 3  # three different early-stopping epochs
    assert all(result.epochs_run < params["epochs"] for result in results)
    for index, (stacked, result) in enumerate(zip(members, results)):
        lone, lone_result = train_alone(params, index, tmp_path / "alone")
        assert_same_run(stacked, result, lone, lone_result, exact=False)
        # the files a lone run leaves, the same columns, model.pt recording the same selection and identity
        assert sorted(p.name for p in stacked.run_dir.iterdir()) == sorted(p.name for p in lone.run_dir.iterdir())
        header = next(csv.reader(open(stacked.run_dir / HISTORY_NAME)))
        assert header == next(csv.reader(open(lone.run_dir / HISTORY_NAME)))
        saved, lone_saved = (torch.load(run.run_dir / FINAL_NAME, weights_only=False) for run in (stacked, lone))
        assert {k: v for k, v in saved.items() if k != "model"} == {k: v for k, v in lone_saved.items() if k != "model"}
        assert saved["model"].keys() == lone_saved["model"].keys()


def test_a_killed_stack_resumes_each_member_exactly(tmp_path):
    params = SETUPS["node, adamw, curriculum"]
    members, results = train_stack(params, tmp_path / "straight")
    with pytest.raises(Interrupted):
        train_stack(params, tmp_path / "killed", model_cls=interrupted_at(4))
    # member 0 stops early at epoch 7 in these settings; the kill came before any stopped
    assert [torch.load(tmp_path / "killed" / f"member{i}" / STATE_DIR / "last.pt", weights_only=False)["loop"]["epoch"]
            for i in range(3)] == [4, 4, 4]
    resumed, resumed_results = train_stack(params, tmp_path / "killed")
    for a, a_result, b, b_result in zip(members, results, resumed, resumed_results):
        assert_same_run(a, a_result, b, b_result, exact=True)
        rows = list(csv.DictReader(open(b.run_dir / HISTORY_NAME)))
        assert [int(r["epoch"]) for r in rows] == list(range(1, b_result.epochs_run + 1))
        assert not (b.run_dir / STATE_DIR).exists() and (b.run_dir / FINAL_NAME).exists()


def test_members_at_different_epochs_resume_a_lone_runs_checkpoint(tmp_path):
    """Member 1 was killed at epoch 3 as a lone run; in the stack it goes on from there while the others
    start at epoch 0, each at its own point of the curriculum and learning-rate schedule."""
    params = SETUPS["node, adamw, curriculum"]
    lone = member(params, 1, tmp_path / "stack")
    lone.model.__class__ = interrupted_at(3)
    with pytest.raises(Interrupted):
        fit(lone.model, lone.prepared, TrainerSettings.from_params(params), run_dir=lone.run_dir, seed=lone.seed,
            device="cpu", identity=lone.identity)
    members, results = train_stack(params, tmp_path / "stack")
    alone, alone_result = train_alone(params, 1, tmp_path / "alone")
    assert_same_run(members[1], results[1], alone, alone_result, exact=False)


def test_a_stopped_member_stops_changing(tmp_path):
    """StackedAdam leaves an inactive member's weights and moments as they are, and its step count."""
    params = SETUPS["gru, adam, clipped"]
    members = [member(params, i, tmp_path) for i in range(2)]
    model = stack([m.model for m in members], [torch.Generator() for _ in members])

    class Run:
        def __init__(self, m):
            self.member, self.optimizer = m, torch.optim.Adam(m.model.parameters())

    optimizer = StackedAdam(model, [Run(m) for m in members], TrainerSettings.from_params(params))
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step([0.1, 0.1], [True, False])
    assert optimizer.steps == [1, 0]
    for p, old, avg in zip(model.parameters(), before, optimizer.exp_avg):
        assert torch.equal(p[1], old[1]) and not torch.equal(p[0], old[0]) and not avg[1].any()


def test_members_of_different_shapes_are_refused_naming_the_data(tmp_path):
    members = [member(PARAMS, 0, tmp_path), member(PARAMS, 1, tmp_path, n_trials=40)]
    with pytest.raises(InputError, match="data1.h5: field 'train encoder_input'"):
        fit_stack(stack, members, TrainerSettings.from_params(PARAMS), device="cpu")


def test_held_out_entry_validation_is_not_stacked(tmp_path):
    shapes = member(PARAMS, 0, tmp_path).prepared.shapes
    with pytest.raises(ConfigError, match="sv_folds"):
        stack([build({**PARAMS, "sv_folds": 3}, shapes)], [torch.Generator()])
    assert isinstance(stack([build(PARAMS, shapes)], [torch.Generator()]), SequentialAutoencoder)
