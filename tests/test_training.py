"""The shared trainer: exact resume, run identity, checkpoints, selection, early stopping, schedules."""

import csv
import itertools

import numpy as np
import pytest
import torch

from latentdyn.data.prepare import prepare
from latentdyn.models.kinds import resolve_model
from latentdyn.models.sequential_autoencoder.model import SequentialAutoencoder, build, curriculum_weights
from latentdyn.training import checkpoints
from latentdyn.training.checkpoints import FINAL_NAME, STATE_DIR, CheckpointWriter, run_identity
from latentdyn.training.device import resolve_device
from latentdyn.training.reporting import HISTORY_NAME
from latentdyn.training.trainer import TrainerSettings, fit

PARAMS = resolve_model(
    "sae",
    {
        "kind": "sequential_autoencoder",
        "dynamics": "node",
        "latent_size": 3,
        "encoder_size": 8,
        "vector_field_size": 16,
        "learning_rate": 1e-2,
        "weight_decay": 1e-5,
        "epochs": 6,
        "batch_size": 8,
        "valid_fraction": 0.25,
        "curriculum": {"points_per_group": 3, "epochs_per_group": 2},
        "checkpoint_every_s": 0,  # every epoch: a kill at epoch k leaves last.pt at k
    },
)


def dataset(seed=0, n_trials=32):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_spikes_heldin": rng.poisson(1.5, size=(n_trials, 12, 5)).astype(np.float32),
        "eval_spikes_heldin": rng.poisson(1.5, size=(8, 12, 5)).astype(np.float32),
    }
    return arrays, {"dataset": "toy", "bin_width_s": 0.01, "phase": "synthetic"}


def train_run(run_dir, params=PARAMS, data_seed=0, seed=4, model_cls=None, device="cpu", **fit_args):
    prepared = prepare(*dataset(data_seed), valid_fraction=params["valid_fraction"], seed=seed)
    torch.manual_seed(seed)
    model = build(params, prepared.shapes)
    if model_cls is not None:
        model.__class__ = model_cls
    identity = run_identity("sequential_autoencoder", params, prepared, seed)
    result = fit(model, prepared, TrainerSettings.from_params(params), run_dir=run_dir, seed=seed, device=device, identity=identity, **fit_args)
    return model, result


class Interrupted(Exception):
    pass


def interrupted_at(epoch):
    class Killed(SequentialAutoencoder):
        def training_step(self, batch, progress):
            if progress.epoch == epoch:
                raise Interrupted
            return super().training_step(batch, progress)

    return Killed


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path):
    straight, result = train_run(tmp_path / "a")
    with pytest.raises(Interrupted):
        train_run(tmp_path / "b", model_cls=interrupted_at(3))
    assert torch.load(tmp_path / "b" / STATE_DIR / "last.pt", weights_only=False)["loop"]["epoch"] == 3
    resumed, resumed_result = train_run(tmp_path / "b")  # a fresh process starts from fresh parameters

    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in resumed_result.history]
    rows = list(csv.DictReader(open(tmp_path / "b" / HISTORY_NAME)))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert {"train_recon", "valid_recon", "valid_loss_smoothed", "lr"} <= set(rows[0])
    assert not list((tmp_path / "b").glob("**/.*tmp"))  # no half-written files left
    assert not (tmp_path / "b" / STATE_DIR).exists() and (tmp_path / "b" / FINAL_NAME).exists()


def test_checkpoints_every_few_epochs_train_the_same_and_a_kill_replays_the_epochs_since(tmp_path, monkeypatch):
    """With `checkpoint_every_s` longer than an epoch, last.pt is written every few epochs (one epoch =
    one second of a fake clock: at epochs 3 and 6 of 6), training is the same as with a write every
    epoch, and a run killed at epoch 5 resumes from epoch 3's files and ends as the uninterrupted one."""
    seconds = itertools.count()
    monkeypatch.setattr(CheckpointWriter, "clock", staticmethod(lambda: next(seconds)))
    written = []
    save = checkpoints.save_checkpoint
    monkeypatch.setattr(checkpoints, "save_checkpoint", lambda path, payload: (written.append(path.name), save(path, payload)))
    every_epoch, every_epoch_result = train_run(tmp_path / "every_epoch")
    assert written.count("last.pt") == 6
    written.clear()
    params = {**PARAMS, "checkpoint_every_s": 2.5}
    straight, result = train_run(tmp_path / "a", params=params)
    assert written.count("last.pt") == 2 and written.count("best.pt") <= 2 and written.count(FINAL_NAME) == 1
    for p, q in zip(every_epoch.parameters(), straight.parameters()):
        assert torch.equal(p, q)
    assert ([{k: v for k, v in row.items() if k != "seconds"} for row in every_epoch_result.history]
            == [{k: v for k, v in row.items() if k != "seconds"} for row in result.history])
    assert (result.selected, result.epoch) == (every_epoch_result.selected, every_epoch_result.epoch)

    with pytest.raises(Interrupted):
        train_run(tmp_path / "b", params=params, model_cls=interrupted_at(4))
    state = tmp_path / "b" / STATE_DIR
    assert torch.load(state / "last.pt", weights_only=False)["loop"]["epoch"] == 3
    assert torch.load(state / "best.pt", weights_only=False)["loop"]["epoch"] <= 3
    assert [int(row["epoch"]) for row in csv.DictReader(open(tmp_path / "b" / HISTORY_NAME))] == [1, 2, 3]
    resumed, resumed_result = train_run(tmp_path / "b", params=params)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in resumed_result.history]
    assert (resumed_result.selected, resumed_result.epoch) == (result.selected, result.epoch)
    assert not list((tmp_path / "b").glob("**/.*tmp"))


def test_a_changed_setting_or_data_starts_fresh_and_says_so(tmp_path, capsys):
    with pytest.raises(Interrupted):
        train_run(tmp_path, model_cls=interrupted_at(3))
    with pytest.raises(Interrupted):
        train_run(tmp_path, params={**PARAMS, "learning_rate": 5e-3}, model_cls=interrupted_at(4))
    out = capsys.readouterr().out
    assert "checkpoint of a different model or data" in out and "resumed" not in out
    with pytest.raises(Interrupted):
        train_run(tmp_path, params={**PARAMS, "learning_rate": 5e-3}, data_seed=1, model_cls=interrupted_at(5))
    out = capsys.readouterr().out
    assert "checkpoint of a different model or data" in out and "resumed" not in out
    _, result = train_run(tmp_path, params={**PARAMS, "learning_rate": 5e-3}, data_seed=1)
    assert "resumed" in capsys.readouterr().out and len(result.history) == 6


def test_logging_settings_do_not_change_the_identity():
    prepared = prepare(*dataset(), valid_fraction=0.25, seed=0)
    base = run_identity("sequential_autoencoder", PARAMS, prepared, 0)
    assert run_identity("sequential_autoencoder", {**PARAMS, "log_every": 1}, prepared, 0) == base
    assert run_identity("sequential_autoencoder", {**PARAMS, "checkpoint_every_s": 600}, prepared, 0) == base
    assert run_identity("sequential_autoencoder", {**PARAMS, "dropout": 0.2}, prepared, 0) != base
    assert run_identity("sequential_autoencoder", PARAMS, prepared, 1) != base


def test_a_truncated_checkpoint_is_set_aside_and_training_starts_over(tmp_path, capsys):
    with pytest.raises(Interrupted):
        train_run(tmp_path, model_cls=interrupted_at(3))
    last = tmp_path / STATE_DIR / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    _, result = train_run(tmp_path)
    out = capsys.readouterr().out
    assert "unreadable checkpoint" in out and "resumed" not in out and len(result.history) == 6
    assert (tmp_path / STATE_DIR).exists() is False


def test_a_finished_run_is_never_resumed(tmp_path, capsys):
    train_run(tmp_path)
    capsys.readouterr()
    train_run(tmp_path)  # what --forcerun does: the same job again
    assert "resumed" not in capsys.readouterr().out


def test_best_checkpoint_is_selected_and_early_stopping_waits_for_burn_in(tmp_path):
    params = {**PARAMS, "epochs": 40, "learning_rate": 0.3, "select": "best", "early_stopping": {"patience": 2, "burn_in": 5}}
    _, result = train_run(tmp_path, params=params)
    history = result.history
    assert 5 + 2 <= len(history) < 40  # a too-high learning rate stops improving, but not before burn-in + patience
    best = min(range(len(history)), key=lambda i: history[i]["valid_loss"])
    assert (result.selected, result.epoch, result.epochs_run) == ("best", best + 1, len(history))
    assert result.selected_checkpoint() == f"best (epoch {best + 1} of {len(history)})"
    assert torch.load(tmp_path / FINAL_NAME, weights_only=False)["epoch"] == best + 1


def test_restore_applies_a_changed_learning_rate(tmp_path):
    with pytest.raises(Interrupted):
        train_run(tmp_path / "donor", model_cls=interrupted_at(3))
    params = {**PARAMS, "learning_rate": 1e-4}
    _, result = train_run(tmp_path / "copy", params=params, restore_from=tmp_path / "donor" / STATE_DIR / "last.pt", hyperparameters=params)
    history = result.history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert history[3]["lr"] == pytest.approx(1e-4) and history[2]["lr"] == pytest.approx(1e-2)


def test_schedules():
    cosine = TrainerSettings(epochs=10, learning_rate=1.0, scheduler={"kind": "warmup_cosine", "warmup_epochs": 2})
    from latentdyn.training.schedules import schedule_factor

    factors = [schedule_factor(cosine, step, 1) for step in range(10)]
    assert factors[:2] == [0.5, 1.0] and factors[2] == pytest.approx(1.0) and factors[-1] < 0.05
    assert all(a >= b for a, b in zip(factors[1:], factors[2:]))


def test_plateau_scheduler_lowers_the_learning_rate(tmp_path):
    params = {**PARAMS, "epochs": 12, "learning_rate": 0.3, "scheduler": {"kind": "plateau", "factor": 0.5, "patience": 0, "min_lr": 0.01}}
    _, result = train_run(tmp_path, params=params)
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] == pytest.approx(0.3) and min(lrs) < 0.3 and min(lrs) >= 0.01


def test_training_reduces_the_loss(tmp_path):
    params = resolve_model("gru", {**PARAMS, "dynamics": "gru", "epochs": 30, "learning_rate": 2e-2, "curriculum": None})
    _, result = train_run(tmp_path, params=params)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] - 0.05


def test_progress_is_printed(tmp_path, capsys):
    train_run(tmp_path, params={**PARAMS, "epochs": 4, "log_every": 2})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"] and "eta" in lines[0]


def test_validation_trials_come_from_training_trials_never_eval():
    arrays, attrs = dataset()
    prepared = prepare(arrays, attrs, valid_fraction=0.25, seed=3)
    assert len(prepared.train) == 24 and len(prepared.valid) == 8
    together = np.sort(np.concatenate([prepared.train.trial_index, prepared.valid.trial_index]))
    assert together.tolist() == list(range(32))
    np.testing.assert_array_equal(prepared.valid.encoder_input, arrays["train_spikes_heldin"][prepared.valid.trial_index])
    own = prepare({**arrays, "valid_spikes_heldin": arrays["eval_spikes_heldin"] + 1}, attrs, valid_fraction=0.25, seed=3)
    assert len(own.train) == 32 and np.array_equal(own.valid.encoder_input, arrays["eval_spikes_heldin"] + 1)


def test_curriculum_weights_grow_and_keep_their_mean():
    curriculum = PARAMS["curriculum"]
    early = curriculum_weights(12, 0, curriculum)
    assert early[:3].tolist() == [4.0] * 3 and early[3:].sum() == 0 and early.mean() == pytest.approx(1.0)
    assert curriculum_weights(12, 2, curriculum)[:6].tolist() == [2.0] * 6
    assert torch.equal(curriculum_weights(12, 100, curriculum), torch.ones(12))
    assert torch.equal(curriculum_weights(12, 0, None), torch.ones(12))


def test_auto_device_is_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


def test_fit_trains_on_the_auto_device(tmp_path):
    model, result = train_run(tmp_path, params={**PARAMS, "epochs": 2}, device="auto")
    assert len(result.history) == 2 and (tmp_path / FINAL_NAME).exists()
    assert next(model.parameters()).device.type == resolve_device("auto").type


@pytest.mark.parametrize("dynamics", ["gru", "node"])
def test_model_shapes_and_nan_inputs(dynamics):
    model = build({**PARAMS, "dynamics": dynamics}, prepare(*dataset(), valid_fraction=0.25, seed=0).shapes)
    spikes = torch.ones(4, 12, 5)
    spikes[0, 3, 2] = float("nan")
    log_rates, latents = model(spikes)
    assert log_rates.shape == (4, 12, 5) and latents.shape == (4, 12, 3)
    assert torch.isfinite(log_rates).all()


def test_external_inputs_reach_the_batch_and_must_cover_every_split():
    from latentdyn.errors import InputError
    from latentdyn.training.trainer import batch_from

    arrays, attrs = dataset()
    ext = {f"{split}_ext_input": np.ones((len(arrays[f"{split}_spikes_heldin"]), 12, 2), np.float32) for split in ("train", "eval")}
    prepared = prepare({**arrays, **ext}, attrs, valid_fraction=0.25, seed=0)
    assert prepared.shapes.n_ext == 2 and batch_from(prepared.valid, "cpu").ext_input.shape == (8, 12, 2)
    with pytest.raises(InputError, match="eval_ext_input"):
        prepare({**arrays, "train_ext_input": ext["train_ext_input"]}, attrs, valid_fraction=0.25, seed=0)


def test_a_kinds_predict_accepts_the_auto_device(tmp_path):
    from latentdyn.models.sequential_autoencoder.model import predict

    model, _ = train_run(tmp_path, params={**PARAMS, "epochs": 1})
    prepared = prepare(*dataset(), valid_fraction=0.25, seed=4)
    outputs = predict(model, prepared, PARAMS, "auto")
    assert outputs["eval_rates_heldin"].shape == (8, 12, 5)
