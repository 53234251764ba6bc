"""The shared training loop: resume after an interruption, history, atomic checkpoints, device."""

import csv

import pytest
import torch

from latentdyn.models.sequential_autoencoder import build_model, curriculum_weights, make_loss
from latentdyn.training.loop import CHECKPOINT_NAME, HISTORY_NAME, TrainingSettings, resolve_device, train

PARAMS = {"latent_size": 3, "encoder_size": 8, "dropout": 0.05, "dynamics": "node", "vector_field_size": 16}
SETTINGS = TrainingSettings(epochs=6, batch_size=8, learning_rate=1e-2, weight_decay=1e-5)
CURRICULUM = {"points_per_group": 3, "epochs_per_group": 2}


def data():
    generator = torch.Generator().manual_seed(0)
    return torch.poisson(torch.full((24, 12, 5), 1.5), generator=generator), torch.poisson(
        torch.full((8, 12, 5), 1.5), generator=generator
    )


class Interrupted(Exception):
    pass


def interrupting(loss, at_epoch):
    def wrapped(model, batch, epoch):
        if epoch == at_epoch:
            raise Interrupted
        return loss(model, batch, epoch)

    return wrapped


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path):
    train_data, valid_data = data()
    loss = make_loss(CURRICULUM)
    torch.manual_seed(4)
    straight = build_model(PARAMS, 5, 12)
    history = train(straight, loss, train_data, valid_data, SETTINGS, run_dir=tmp_path / "a", seed=4, device="cpu")

    torch.manual_seed(4)
    killed = build_model(PARAMS, 5, 12)
    with pytest.raises(Interrupted):
        train(killed, interrupting(loss, 3), train_data, valid_data, SETTINGS, run_dir=tmp_path / "b", seed=4, device="cpu")
    assert torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=False)["epoch"] == 3
    resumed = build_model(PARAMS, 5, 12)  # a fresh process would start from fresh parameters
    resumed_history = train(resumed, loss, train_data, valid_data, SETTINGS, run_dir=tmp_path / "b", seed=4, device="cpu")

    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in resumed_history]
    rows = list(csv.DictReader(open(tmp_path / "b" / HISTORY_NAME)))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert not list((tmp_path / "b").glob(".*tmp"))  # no half-written files left


def test_training_reduces_the_loss(tmp_path):
    train_data, valid_data = data()
    model = build_model({**PARAMS, "dynamics": "gru"}, 5, 12)
    settings = TrainingSettings(epochs=30, batch_size=8, learning_rate=2e-2)
    history = train(model, make_loss(None), train_data, valid_data, settings, run_dir=tmp_path, seed=0, device="cpu")
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.1


def test_progress_is_printed(tmp_path, capsys):
    train_data, valid_data = data()
    settings = TrainingSettings(epochs=4, batch_size=8, learning_rate=1e-2, log_every=2)
    train(build_model(PARAMS, 5, 12), make_loss(None), train_data, valid_data, settings, run_dir=tmp_path, seed=0, device="cpu")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"] and "eta" in lines[0]


def test_curriculum_weights_grow_and_keep_their_mean():
    early = curriculum_weights(12, 0, CURRICULUM)
    assert early[:3].tolist() == [4.0] * 3 and early[3:].sum() == 0 and early.mean() == pytest.approx(1.0)
    assert curriculum_weights(12, 2, CURRICULUM)[:6].tolist() == [2.0] * 6
    assert torch.equal(curriculum_weights(12, 100, CURRICULUM), torch.ones(12))
    assert torch.equal(curriculum_weights(12, 0, None), torch.ones(12))


def test_auto_device_is_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("dynamics", ["gru", "node"])
def test_model_shapes_and_nan_inputs(dynamics):
    model = build_model({**PARAMS, "dynamics": dynamics}, 5, 12)
    spikes = torch.ones(4, 12, 5)
    spikes[0, 3, 2] = float("nan")
    log_rates, latents = model(spikes)
    assert log_rates.shape == (4, 12, 5) and latents.shape == (4, 12, 3)
    assert torch.isfinite(log_rates).all()
