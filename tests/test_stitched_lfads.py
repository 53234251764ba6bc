"""Multisession stitching (README §10): the stitched layout, PCR initialisation, per-session batches and
loss, session independence, resume, and stitched training beating each session alone."""

import numpy as np
import pytest
import torch
from multisession_counts import binned_session, latent_trajectories
from test_kind_conformance import assert_resumes_exactly
from test_lfads import one_thread  # noqa: F401 (autouse fixture)

from latentdyn.data.prepare import prepare
from latentdyn.data.stitch import stitch, unstitch
from latentdyn.errors import ConfigError, InputError
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.models.kinds import get_kind
from latentdyn.models.pipeline import train_and_predict
from latentdyn.models.stitched_lfads.model import build, initialise
from latentdyn.models.stitched_lfads.pcr import pcr_maps
from latentdyn.training.checkpoints import run_identity
from latentdyn.training.contract import Progress
from latentdyn.training.trainer import batch_from

KIND = get_kind("stitched_lfads")
SMALL = dict(ic_enc_dim=16, ci_enc_dim=16, con_dim=16, co_dim=0, ic_dim=8, gen_dim=16, fac_dim=6, readin_dim=6,
             dropout_rate=0.2, cd_rate=0.3, kl_increase_epochs=10, l2_increase_epochs=10, batch_size=8,
             learning_rate=1e-2, posterior_samples=0, early_stopping=None, log_every=100)


def sessions(n_train=(20, 12), conditions=((0, 1, 2, 3), (1, 2, 3))):
    return [(*binned_session(s, n, n_heldin=14 - 4 * s, conditions=c), f"s{s}.h5")
            for s, (n, c) in enumerate(zip(n_train, conditions))]


def params(**overrides):
    return KIND.resolve({"kind": "stitched_lfads", "epochs": 4, **SMALL, **overrides})


@pytest.fixture(scope="module")
def stitched():
    return stitch(sessions(), "pair")


def test_rows_hold_one_trial_of_every_session_shorter_ones_cycled(stitched):
    arrays, attrs = stitched
    rows = [s["rows"] for s in attrs["sessions"]]
    assert [len(r["valid"]) for r in rows] == [4, 2] and [len(r["train"]) for r in rows] == [16, 10]  # every 5th
    assert not set(rows[0]["valid"]) & set(rows[0]["train"])
    trial = arrays["train_session_trial"]
    assert trial.shape == (16, 2) and list(trial[:, 1]) == list(np.resize(rows[1]["train"], 16))
    assert not np.isnan(arrays["train_spikes_heldin"]).any()  # training rows: every session observed
    assert arrays["train_spikes_heldin"].shape[-1] == 14 + 10
    # validation and evaluation: cycled copies unobserved, so each trial counts once
    assert np.isnan(arrays["valid_spikes_heldin"][2:, :, 14:]).all() and not np.isnan(arrays["valid_spikes_heldin"][:2]).any()
    assert attrs["conditions"] == ["c=0", "c=1", "c=2", "c=3"]
    assert (arrays["train_session_condition"][:, 1] >= 1).all()  # session 1 has no condition 0


def test_unstitch_gives_each_session_its_own_arrays(stitched):
    arrays, attrs = stitched
    outputs = {f"{split}_rates_{g}": arrays[f"{split}_true_rates_{g}"] for split in ("train", "valid", "eval")
               for g in ("heldin", "heldout")}
    outputs["latents/eval_factors"] = np.concatenate([np.zeros((12, 20, 3)), np.ones((12, 20, 3))], axis=-1)
    for s, (session, _, _) in enumerate(sessions()):
        own = unstitch(outputs, attrs, s)
        for key in ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin"):
            np.testing.assert_array_equal(own[key], session[key.replace("rates", "true_rates")])
        np.testing.assert_array_equal(own["latents/eval_factors"], np.full((12, 20, 3), s))


def test_sessions_binned_differently_are_refused():
    first, second = sessions()
    second[1]["bin_width_s"] = 0.005
    with pytest.raises(InputError, match="s1.h5.*bin_width_s"):
        stitch([first, second], "pair")


def test_pcr_readin_maps_each_sessions_psths_onto_the_shared_pcs():
    """Noise-free PSTHs of a shared 3-D structure: every session's read-in recovers the global PCs."""
    latents = latent_trajectories(20)
    rng = np.random.default_rng(0)
    psths, units = [], []
    for n, present in ((12, range(4)), (9, (0, 1, 2))):  # session 1 lacks a condition
        weights = rng.normal(size=(3, n))
        psths.append({c: 2.0 + latents[c] @ weights for c in present})
        units.append((n, 0))
    maps = pcr_maps(psths, units, dim=3, ridge=1e-6)
    pcs = [np.concatenate([psth[c] for c in (0, 1, 2)]) @ m.readin_weight + m.readin_bias for psth, m in zip(psths, maps)]
    error = np.linalg.norm(pcs[0] - pcs[1]) / np.linalg.norm(pcs[0])
    assert error < 0.05
    for psth, m in zip(psths, maps):  # the read-out inverts the read-in on the session's data
        x = np.concatenate(list(psth.values()))
        assert np.linalg.norm((x @ m.readin_weight + m.readin_bias) @ m.readout_weight + m.readout_bias - x) < 1e-3 * np.linalg.norm(x)


def test_readout_starts_as_the_pseudo_inverse_of_the_frozen_readin(stitched):
    prepared = prepare(*stitched, valid_fraction=0.2, seed=0)
    p = params()
    model = build(p, prepared.shapes)
    initialise(model, prepared, p)
    for s, (n_in, _) in enumerate(prepared.shapes.session_units):
        readin = model.readin.layers[s].weight.detach().numpy()  # dim × n_in: W.T
        readout = model.readout.layers[s].linear.weight.detach().numpy()[:n_in]  # n_in × dim
        np.testing.assert_allclose(readout, np.linalg.pinv(readin.T).T, atol=1e-5)
        assert not model.readin.layers[s].weight.requires_grad and model.readout.layers[s].linear.weight.requires_grad
    random = build(params(readin_init="random", readout_init="random"), prepared.shapes)
    assert random.readin.layers[0].weight.requires_grad
    with pytest.raises(ConfigError, match="readout_init"):
        build(params(fac_dim=5), prepared.shapes)


def test_loss_is_the_mean_of_per_session_means_and_sessions_are_independent(stitched):
    prepared = prepare(*stitched, valid_fraction=0.2, seed=0)
    torch.manual_seed(0)
    model = build(params(), prepared.shapes).eval()
    batch = batch_from(prepared.train, "cpu")
    with torch.no_grad():
        output = model(torch.nan_to_num(batch.encoder_input), sample=False)
        result = model.validation_step(batch, Progress(0, 1))
        nll = model.distribution.nll(output.params, batch.target)
    units = prepared.shapes.session_units
    columns = [np.r_[0:14, 24:27], np.r_[14:24, 27:30]]
    assert [len(c) for c in columns] == [sum(u) for u in units]
    per_session = [nll[..., c].mean() for c in columns]  # equal trials per session in every row
    # validation samples the posterior: compare the deterministic decode through the same mean
    assert model._mean_over_entries(nll, batch.observed) == pytest.approx(float(sum(per_session) / 2), rel=1e-5)
    assert float(nll.mean()) != pytest.approx(float(sum(per_session) / 2), rel=1e-3)  # not the pooled mean
    assert torch.isfinite(result.loss)

    # a session's rates depend only on its own trial and read-in, never on the other session's
    changed = batch.encoder_input.clone()
    changed[..., 14:] = changed[..., 14:].flip(0) + 3
    with torch.no_grad():
        model.readin.layers[1].weight.add_(1.0)
        other = model(torch.nan_to_num(changed), sample=False)
    torch.testing.assert_close(other.params[..., columns[0], :], output.params[..., columns[0], :])
    assert not torch.allclose(other.params[..., columns[1], :], output.params[..., columns[1], :])


def test_sample_validation_masks_follow_each_sessions_own_trial(stitched, tmp_path):
    prepared = prepare(*stitched, valid_fraction=0.2, seed=0)
    model = build(params(sv_rate=0.3), prepared.shapes)
    index = torch.as_tensor(prepared.train.trial_index)
    mask = model._sample_validation_mask(index, (20, 24))
    cycled = 10  # session 1 has 10 training trials: row 10 repeats row 0's session-1 trial
    assert torch.equal(mask[cycled, :, 14:], mask[0, :, 14:]) and not torch.equal(mask[cycled, :, :14], mask[0, :, :14])
    outputs, _ = train_and_predict(params(sv_rate=0.3, monitor="valid_sv_nll", epochs=1), *stitched, run_dir=tmp_path,
                                   seed=0, device="cpu")
    assert np.isfinite(outputs["eval_rates_heldin"]).all()


def test_interrupted_stitched_training_resumes_to_the_uninterrupted_result(stitched, tmp_path, monkeypatch, capsys):
    assert_resumes_exactly("stitched_lfads", tmp_path, monkeypatch, capsys, params(sv_rate=0.2), *stitched)


def test_run_identity_covers_every_sessions_data(stitched):
    first, second = sessions()
    second[0]["train_spikes_heldin"][0, 0, 0] += 1  # one count of one session
    p = params()
    identities = [run_identity("stitched_lfads", p, prepare(*data, valid_fraction=0.2, seed=0), 0)
                  for data in (stitched, stitch([first, second], "pair"))]
    assert identities[0] != identities[1]


def test_stitching_recovers_shared_dynamics_better_than_either_session_alone(tmp_path):
    """Two sessions of few trials each: the stitched model's rates are closer to the truth in both."""
    pair = sessions(n_train=(15, 15), conditions=(range(4), range(4)))
    config = params(epochs=150)
    stitched_outputs, _ = train_and_predict(config, *stitch(pair, "pair"), run_dir=tmp_path / "both", seed=0, device="cpu")
    _, attrs = stitch(pair, "pair")
    for s, (arrays, session_attrs, _) in enumerate(pair):
        alone, _ = train_and_predict(config, *stitch([pair[s]], "one"), run_dir=tmp_path / f"alone{s}", seed=0, device="cpu")
        truth = arrays["eval_true_rates_heldin"]
        r2_alone = rate_r2(unstitch(alone, stitch([pair[s]], "one")[1], 0)["eval_rates_heldin"], truth)
        r2_both = rate_r2(unstitch(stitched_outputs, attrs, s)["eval_rates_heldin"], truth)
        print(f"session {s}: rate R² stitched {r2_both:.3f}, alone {r2_alone:.3f}")
        assert r2_both > r2_alone
