"""LFADS (models/lfads): cells, priors, distributions, augmentations, loss, training and presets."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from latentdyn.data.format import validate_model_output
from latentdyn.data.prepare import DataShapes
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.models.components import poisson_nll
from latentdyn.models.kinds import resolve_model
from latentdyn.models import augmentations
from latentdyn.models.lfads.cells import ClippedGRU, ClippedGRUCell
from latentdyn.models.lfads.distributions import Gamma, Gaussian, Poisson, ZeroInflatedGamma
from latentdyn.models.lfads.model import STATE_LATENT, Ramp, build
from latentdyn.models.lfads.priors import AutoregressivePrior, NormalPrior
from latentdyn.models.pipeline import train_and_predict
from latentdyn.models.smoothing.model import gaussian_window, smooth_spikes
from latentdyn.training.contract import Batch, Progress
from random_counts import poisson_counts

PRESETS = Path(__file__).parents[1] / "config" / "presets" / "lfads.yaml"
TINY = dict(ic_enc_dim=8, ci_enc_dim=6, con_dim=6, co_dim=2, ic_dim=4, gen_dim=10, fac_dim=3, dropout_rate=0.0, cd_rate=0.0)
SHAPES = DataShapes(n_input=5, n_heldout=2, n_bins=8, n_forward=3)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and far faster than two when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lfads_params(**overrides):
    return resolve_model("lfads_test", {"kind": "lfads", **TINY, **overrides})


def tiny_model(shapes=SHAPES, seed=0, **overrides):
    torch.manual_seed(seed)
    return build(lfads_params(**overrides), shapes)


def tiny_batch(shapes=SHAPES, n_trials=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.poisson(torch.full((n_trials, shapes.n_recon_bins, shapes.n_output), 1.5), generator=generator)
    return Batch(
        encoder_input=target[:, : shapes.n_bins, : shapes.n_input].clone(),
        target=target,
        trial_index=torch.arange(n_trials),
    )


def capture_readout(model):
    """Record the readout's output (the distribution parameters) of the next forward pass, gradients kept."""
    captured = {}

    def hook(module, inputs, output):
        if output.requires_grad:
            output.retain_grad()
        captured["params"] = output

    model.readout.register_forward_hook(hook)
    return captured


# --- clipped GRU cell -------------------------------------------------------------------------------


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_clipped_gru_cell_matches_a_hand_computed_step():
    torch.manual_seed(1)
    cell = ClippedGRUCell(3, 4, clip=5.0)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    U = torch.cat([cell.weight_hh_zr, cell.weight_hh_n])  # rows z, r, n
    W, U, b = (p.detach().double().numpy() for p in (cell.weight_ih, U, cell.bias_ih))
    xn, hn = x.double().numpy(), h.double().numpy()
    z = sigmoid(xn @ W[:4].T + b[:4] + hn @ U[:4].T)
    r = sigmoid(xn @ W[4:8].T + b[4:8] + hn @ U[4:8].T)
    n = np.tanh(xn @ W[8:].T + b[8:] + (r * hn) @ U[8:].T)  # reset BEFORE the recurrent matmul (TF1)
    expected = z * hn + (1 - z) * n
    np.testing.assert_allclose(cell(x, h).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_clipped_gru_cell_initialisation():
    cell = ClippedGRUCell(400, 300, clip=5.0)
    assert cell.bias_ih[:600].eq(1).all() and cell.bias_ih[600:].eq(0).all()
    assert cell.weight_ih.std().item() == pytest.approx(1 / math.sqrt(400), rel=0.02)
    for weight in cell.recurrent_weights():
        assert weight.std().item() == pytest.approx(1 / math.sqrt(300), rel=0.02)
    assert sorted(name for name, _ in cell.named_parameters()) == ["bias_ih", "weight_hh_n", "weight_hh_zr", "weight_ih"]


def test_clipped_gru_cell_clamps_at_cell_clip():
    cell = ClippedGRUCell(2, 3, clip=0.25)
    with torch.no_grad():
        cell.bias_ih.fill_(-20.0)  # z ≈ 0: h' ≈ n, which leaves [-0.25, 0.25] for large inputs
        cell.bias_ih[6:] = 0.0
    x = torch.full((4, 2), 30.0)
    h = cell(x, torch.zeros(4, 3))
    assert h.abs().max().item() == pytest.approx(0.25)
    unclipped = ClippedGRUCell(2, 3, clip=math.inf)
    unclipped.load_state_dict(cell.state_dict())
    assert unclipped(x, torch.zeros(4, 3)).abs().max() > 0.9


def test_fast_layer_equals_the_eager_per_step_loop():
    torch.manual_seed(2)
    fast = ClippedGRU(4, 6, clip=5.0)
    eager = ClippedGRU(4, 6, clip=5.0, eager=True)
    eager.load_state_dict(fast.state_dict())
    x, h0 = torch.randn(3, 9, 4), torch.randn(3, 6)
    x_fast, x_eager = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_fast, out_eager = fast(x_fast, h0), eager(x_eager, h0)
    torch.testing.assert_close(out_fast, out_eager, rtol=1e-5, atol=1e-6)
    out_fast.square().sum().backward()
    out_eager.square().sum().backward()
    torch.testing.assert_close(x_fast.grad, x_eager.grad, rtol=1e-4, atol=1e-5)
    for p, q in zip(fast.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_fast_lfads_equals_eager_lfads(train):
    """Same weights and seed: the fused model (controller, CD, posterior sampling) matches the per-step
    one, loss and gradients. Training-mode dropout draws its per-bin masks differently in the two
    (all bins at once vs per step), so it is exercised in eval mode only."""
    settings = dict(dropout_rate=0.0 if train else 0.2, cd_rate=0.3)
    fast = tiny_model(**settings)
    eager = tiny_model(**settings, eager_recurrence=True)
    eager.load_state_dict(fast.state_dict())
    batch, progress = tiny_batch(), Progress(epoch=5, total_epochs=10)
    results = []
    for model in (fast, eager):
        torch.manual_seed(3)
        model.train(train)
        result = model.training_step(batch, progress)
        result.loss.backward()
        results.append(result)
    torch.testing.assert_close(results[0].loss, results[1].loss, rtol=1e-5, atol=1e-3)
    for p, q in zip(fast.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-3)


def test_fused_paths_run_under_half_precision_autocast_with_fp32_recurrences():
    """Under bf16 autocast the fused encoders, decoder and loss no longer fail on mixed dtypes (issue 20):
    the recurrences run in fp32, so the rates stay within a few per cent of the fp32 model's (the
    latency study's half-precision tolerance), the layers around them do run in bf16 (the rates are not
    the fp32 ones), and a training step under autocast (backward included) gives finite fp32 gradients
    (not fp32's: posterior samples drawn in bf16 are other draws)."""
    model = tiny_model(cd_rate=0.3).eval()
    batch = tiny_batch()

    def rates():
        return model.distribution.mean(model(batch.encoder_input, sample=False).params)

    with torch.no_grad():
        reference = rates()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = rates().float()
    difference = (half - reference).abs().max().item()
    assert 0 < difference <= 0.05 * reference.abs().max().item()

    torch.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train().training_step(batch, Progress(epoch=5, total_epochs=10)).loss.backward()
    gradients = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in gradients)


# --- priors -----------------------------------------------------------------------------------------


def test_normal_kl_is_zero_for_identical_normals_and_matches_a_known_value():
    prior = NormalPrior(3, variance=0.1)
    same = prior.kl(torch.zeros(5, 3), torch.full((5, 3), math.sqrt(0.1)))
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    # KL(N(1, 1) ‖ N(0, 0.1)) per dim = ½(log 0.1 − log 1 + (1 + 1)/0.1 − 1), summed over 3 dims
    expected = 3 * 0.5 * (math.log(0.1) + 2 / 0.1 - 1)
    assert prior.kl(torch.ones(5, 3), torch.ones(5, 3)).item() == pytest.approx(expected, rel=1e-5)


def test_ar1_prior_stationary_variance_matches_a_simulated_path():
    prior = AutoregressivePrior(1, tau=10.0, noise_variance=0.1)
    alpha = math.exp(-1 / 10)
    assert prior.stationary_variance().item() == pytest.approx(0.1 / (1 - alpha**2), rel=1e-5)
    generator = np.random.default_rng(0)
    u, path = 0.0, []
    for noise in generator.normal(0, math.sqrt(0.1), 200_000):
        u = alpha * u + noise
        path.append(u)
    assert np.var(path[1000:]) == pytest.approx(prior.stationary_variance().item(), rel=0.05)


def test_ar1_prior_log_prob_and_kl():
    prior = AutoregressivePrior(2, tau=5.0, noise_variance=0.3)
    u = torch.randn(4, 7, 2)
    alpha, nvar, var0 = prior.alpha, 0.3, prior.stationary_variance()
    expected = torch.distributions.Normal(0, var0.sqrt()).log_prob(u[:, 0]).sum(-1)
    expected = expected + torch.distributions.Normal(alpha * u[:, :-1], math.sqrt(nvar)).log_prob(u[:, 1:]).sum((1, 2))
    torch.testing.assert_close(prior.log_prob(u), expected)
    # A posterior with the prior's marginal N(0, var0) at every bin but no correlation between bins:
    # per later bin and dim KL = ½ log(1 − α²) − ½ + (1 + α²) / (2 (1 − α²)); the first bin costs nothing.
    a2 = math.exp(-1 / 5.0) ** 2
    analytic = 6 * 2 * (0.5 * math.log(1 - a2) - 0.5 + (1 + a2) / (2 * (1 - a2)))
    torch.manual_seed(0)
    with torch.no_grad():
        kl = torch.stack([prior.kl(torch.zeros(512, 7, 2), var0.sqrt().expand(512, 7, 2)) for _ in range(20)]).mean()
    assert kl.item() == pytest.approx(analytic, rel=0.05)


# --- distributions ----------------------------------------------------------------------------------


def test_reconstruction_nlls_match_torch_distributions():
    torch.manual_seed(4)
    data = torch.rand(3, 5, 4) * 3 + 0.1
    two = torch.randn(3, 5, 4, 2) * 0.5
    torch.testing.assert_close(
        Poisson().nll(two[..., :1], data.round()), -torch.distributions.Poisson(two[..., 0].exp()).log_prob(data.round())
    )
    torch.testing.assert_close(
        Gaussian().nll(two, data), -torch.distributions.Normal(two[..., 0], (0.5 * two[..., 1]).exp()).log_prob(data)
    )
    torch.testing.assert_close(
        Gamma().nll(two, data), -torch.distributions.Gamma(two[..., 0].exp(), two[..., 1].exp()).log_prob(data)
    )
    zig = ZeroInflatedGamma(4, location=0.05)
    three = torch.cat([two, torch.randn(3, 5, 4, 1)], -1)
    q = torch.sigmoid(three[..., 2])
    events = torch.where(data > 1.5, data, 0.0)
    gamma = torch.distributions.Gamma(three[..., 0].exp(), three[..., 1].exp())
    expected = torch.where(events == 0, -torch.log(1 - q), -torch.log(q) - gamma.log_prob((events - 0.05).clamp_min(1e-6)))
    torch.testing.assert_close(zig.nll(three, events), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(zig.mean(three), q * (0.05 + gamma.mean))


# --- loss, ramps, augmentations ---------------------------------------------------------------------


def test_ramps():
    ramp = Ramp(start=2, length=4)
    assert [ramp(torch.tensor(float(e))).item() for e in (0, 1, 2, 3, 5, 6, 50)] == pytest.approx([0, 0, 0.2, 0.4, 0.8, 1, 1])
    model = tiny_model(kl_start_epoch=0, kl_increase_epochs=9, l2_start_epoch=3, l2_increase_epochs=1)
    model.eval()
    with torch.no_grad():
        terms = model.validation_step(tiny_batch(), Progress(epoch=4, total_epochs=10)).terms
        assert terms["kl_ramp"].item() == pytest.approx(0.5) and terms["l2_ramp"].item() == pytest.approx(1.0)
        graph_progress = Progress(epoch=0, total_epochs=10)
        graph_progress.epoch_tensor = torch.tensor(4.0)  # the CUDA-graph path: the epoch as a tensor wins
        assert model.validation_step(tiny_batch(), graph_progress).terms["kl_ramp"].item() == pytest.approx(0.5)


def test_loss_combines_the_terms_with_scales_and_ramps():
    model = tiny_model(
        kl_ic_scale=1e-3, kl_co_scale=2e-3, l2_gen_scale=0.5, l2_con_scale=0.1, kl_increase_epochs=3, l2_increase_epochs=1
    )
    model.eval()
    with torch.no_grad():
        result = model.validation_step(tiny_batch(), Progress(epoch=1, total_epochs=10))
    t = result.terms
    expected = 1e4 * (t["recon"] + t["l2_ramp"] * t["l2"] + t["kl_ramp"] * (1e-3 * t["kl_ic"] + 2e-3 * t["kl_co"]))
    torch.testing.assert_close(result.loss, expected)
    generator, controller = model.dynamics.cell.recurrent_weights(), model.decoder.controller.recurrent_weights()
    squares = [sum(w.square().sum() for w in weights) for weights in (generator, controller)]
    l2 = (0.5 * 0.5 * squares[0] + 0.1 * 0.5 * squares[1]) / sum(w.numel() for w in generator + controller)
    assert sum(w.numel() for w in generator) == 3 * 10 * 10
    torch.testing.assert_close(t["l2"], l2)
    assert t["kl_co"] > 0 and t["kl_ic"] > 0


@pytest.mark.parametrize("ic_enc_seq_len", [0, 2])
def test_coordinated_dropout_backpropagates_only_through_dropped_entries(monkeypatch, ic_enc_seq_len):
    model = tiny_model(cd_rate=0.4, ic_enc_seq_len=ic_enc_seq_len)
    masks, original = [], augmentations.coordinated_dropout

    def recording(*args):
        dropped_inputs, dropped = original(*args)
        masks.append(dropped)
        return dropped_inputs, dropped

    monkeypatch.setattr(augmentations, "coordinated_dropout", recording)
    captured = capture_readout(model)
    batch = tiny_batch()
    model.train().training_step(batch, Progress(0, 1)).terms["recon"].backward()
    grad = captured["params"].grad[..., 0]  # d recon / d log-rate
    dropped = masks[0]
    window = grad[:, ic_enc_seq_len : SHAPES.n_bins, : SHAPES.n_input]  # what CD acts on
    dropped = dropped[:, ic_enc_seq_len:]
    assert 0.2 < dropped.float().mean() < 0.6 and not masks[0][:, :ic_enc_seq_len].any()
    assert window[~dropped].abs().max() == 0  # kept entries: no gradient
    assert (window[dropped] != 0).float().mean() > 0.9
    # entries CD does not touch always train: IC-only bins, held-out units, forward bins
    assert (grad[:, :ic_enc_seq_len] != 0).all()
    assert (grad[:, :, SHAPES.n_input :] != 0).all() and (grad[:, SHAPES.n_bins :] != 0).all()
    # the input the model read: dropped entries zeroed, kept ones scaled by 1/(1 - rate)
    scaled, again = augmentations.coordinated_dropout(torch.ones(200, 10, 10), 0.4)
    assert scaled[again].eq(0).all() and torch.allclose(scaled[~again], torch.tensor(1 / 0.6))


def test_sbtt_loss_ignores_unobserved_entries_and_equals_the_full_loss_without_them():
    model = tiny_model().eval()
    captured = capture_readout(model)
    batch = tiny_batch()
    missing = torch.rand(batch.target.shape, generator=torch.Generator().manual_seed(5)) < 0.3
    holey = Batch(
        encoder_input=torch.where(missing[:, : SHAPES.n_bins, : SHAPES.n_input], torch.nan, batch.encoder_input),
        target=torch.where(missing, torch.nan, batch.target),
        trial_index=batch.trial_index,
    )
    for data, observed in ((batch, torch.ones_like(missing)), (holey, ~missing)):
        result = model.validation_step(data, Progress(0, 1))
        nll = model.distribution.nll(captured["params"], batch.target)
        assert torch.isfinite(result.loss)
        torch.testing.assert_close(result.terms["recon"], nll[observed].mean())
        torch.testing.assert_close(result.terms["recon"], poisson_nll(captured["params"][..., 0], data.target))
    # no gradient reaches the model from an unobserved entry
    model.train()
    model.validation_step(holey, Progress(0, 1)).terms["recon"].backward()
    grad = captured["params"].grad[..., 0]
    assert grad[missing].abs().max() == 0 and (grad[~missing] != 0).all()


def test_sample_validation_entries_never_reach_the_input_and_masks_are_fixed_per_trial():
    model = tiny_model(sv_rate=0.3, sv_seed=7).eval()
    captured = capture_readout(model)
    batch = tiny_batch(n_trials=8)
    held = augmentations.sample_validation_mask(batch.trial_index, (SHAPES.n_bins, SHAPES.n_input), 0.3, 7)
    assert 0.15 < held.float().mean() < 0.45
    perturbed_input = torch.where(held, batch.encoder_input + 7.0, batch.encoder_input)
    perturbed_target = batch.target.clone()
    perturbed_target[:, : SHAPES.n_bins, : SHAPES.n_input] = torch.where(held, perturbed_input, batch.encoder_input)
    runs = []
    for data in (batch, Batch(perturbed_input, perturbed_target, batch.trial_index)):
        torch.manual_seed(0)
        runs.append((model.validation_step(data, Progress(0, 1)), captured["params"]))
    (first, params), (second, params_perturbed) = runs
    torch.testing.assert_close(params, params_perturbed)  # held-out entries do not reach the model
    torch.testing.assert_close(first.terms["recon"], second.terms["recon"])  # nor the training loss
    assert second.terms["sv_nll"] > first.terms["sv_nll"]  # they are what sample validation scores
    # the same trial gets the same mask in any batch, any epoch; another seed gives another mask
    reordered = augmentations.sample_validation_mask(batch.trial_index.flip(0), (SHAPES.n_bins, SHAPES.n_input), 0.3, 7)
    assert torch.equal(reordered, held.flip(0))
    assert not torch.equal(held, augmentations.sample_validation_mask(batch.trial_index, (SHAPES.n_bins, SHAPES.n_input), 0.3, 8))
    assert not torch.equal(held[0], held[1])


def test_controller_input_encoding_is_lagged():
    """The forward half at bin t reads data up to t − lag, the backward half from t + lag on."""
    model = tiny_model(ci_lag=2).eval()
    x = torch.rand(1, SHAPES.n_bins, SHAPES.n_input)
    changed = x.clone()
    changed[:, 4] += 1.0
    with torch.no_grad():
        before, after = model.ci_encoder(x), model.ci_encoder(changed)
    half = before.shape[-1] // 2
    forward_moved = ((before - after)[..., :half].abs().amax(-1) > 0)[0]
    backward_moved = ((before - after)[..., half:].abs().amax(-1) > 0)[0]
    assert forward_moved.nonzero().flatten().tolist() == list(range(6, SHAPES.n_bins))  # bins >= 4 + lag
    assert backward_moved.nonzero().flatten().tolist() == [0, 1, 2]  # bins <= 4 − lag
    assert before.shape == (1, SHAPES.n_recon_bins, 2 * half) and before[:, SHAPES.n_bins :].eq(0).all()


def test_changed_hyperparameters_apply_after_a_restore():
    trained = tiny_model(dropout_rate=0.1, cd_rate=0.2)
    restored = tiny_model(seed=9, dropout_rate=0.1, cd_rate=0.2)  # a fresh build, as a resumed run makes
    restored.load_state_dict(trained.state_dict())
    mutated = lfads_params(dropout_rate=0.45, cd_rate=0.5, kl_ic_scale=1e-2, l2_gen_scale=0.3)
    restored.set_hyperparameters(mutated)
    assert {m.p for m in restored.modules() if isinstance(m, torch.nn.Dropout)} == {0.45}
    assert restored.augmentation.cd_rate == 0.5
    with torch.no_grad():
        result = restored.eval().validation_step(tiny_batch(), Progress(100, 200))
    t = result.terms
    assert t["l2"] > 0
    torch.testing.assert_close(result.loss, 1e4 * (t["recon"] + t["l2"] + 1e-2 * t["kl_ic"] + 1e-7 * t["kl_co"]))


def test_node_generator_exposes_the_zero_input_map():
    model = tiny_model(generator="node", node_hidden=12)
    state = torch.randn(4, 10)
    ode = model.dynamics.ode
    torch.testing.assert_close(model.dynamics.step(state), ode.step(state))
    torch.testing.assert_close(model.dynamics.fixed_point_residual(state), ode.vector_field(state))
    assert ode.dt == pytest.approx(1 / SHAPES.n_recon_bins)
    gru = tiny_model().dynamics
    torch.testing.assert_close(
        gru.fixed_point_residual(state), gru.advance(gru.cell.project_input(torch.zeros(4, 2)), state) - state
    )


# --- training ---------------------------------------------------------------------------------------


def test_a_tiny_lfads_overfits_a_tiny_set():
    """Training NLL falls far, and below that of the true rates: the model memorises the noise."""
    model = tiny_model(co_dim=2, ic_dim=8, gen_dim=16, fac_dim=6, kl_increase_epochs=0)
    batch = tiny_batch(n_trials=8)
    true_rate_nll = poisson_nll(torch.full_like(batch.target, math.log(1.5)), batch.target).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)

    def recon():
        with torch.no_grad():
            return model.eval().validation_step(batch, Progress(0, 1)).terms["recon"].item()

    start = recon()
    for step in range(200):
        result = model.train().training_step(batch, Progress(step, 200))
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
    assert recon() < min(start - 0.5, true_rate_nll - 0.2)


def rotation_dataset(n_trials=160, n_bins=30, n_neurons=20, seed=0):
    """Poisson spikes from rates driven by a 2-D rotation with a random phase and amplitude per trial."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1)) + 2 * np.pi / n_bins * np.arange(n_bins)
    amplitude = rng.uniform(0.5, 1.5, (n_trials, 1))
    latents = np.stack([amplitude * np.cos(phase), amplitude * np.sin(phase)], -1)
    rates = np.exp(np.log(0.5) + latents @ rng.normal(0, 1, (2, n_neurons))).astype(np.float32)
    spikes = rng.poisson(rates).astype(np.float32)
    arrays = {}
    for split, rows in {"train": slice(0, 80), "valid": slice(80, 100), "eval": slice(100, n_trials)}.items():
        arrays[f"{split}_spikes_heldin"] = spikes[rows]
        arrays[f"{split}_true_rates_heldin"] = rates[rows]
    return arrays, {"dataset": "rotation", "bin_width_s": 0.02}


def test_lfads_recovers_rates_better_than_smoothing(tmp_path, capsys):
    arrays, attrs = rotation_dataset()
    truth = arrays["eval_true_rates_heldin"]
    smoothing_r2 = max(
        rate_r2(smooth_spikes(arrays["eval_spikes_heldin"], gaussian_window(sd, 20)), truth) for sd in (20, 40, 60, 80, 100)
    )
    params = resolve_model(
        "lfads_test",
        dict(
            kind="lfads",
            ic_enc_dim=16,
            ci_enc_dim=8,
            con_dim=8,
            co_dim=0,
            ic_dim=8,
            gen_dim=16,
            fac_dim=4,
            dropout_rate=0.05,
            kl_increase_epochs=20,
            l2_increase_epochs=20,
            epochs=100,
            batch_size=40,
            learning_rate=1e-2,
            posterior_samples=5,
            early_stopping=None,
        ),
    )
    outputs, output_attrs = train_and_predict(params, arrays, attrs, run_dir=tmp_path, seed=0, device="cpu")
    lfads_r2 = rate_r2(outputs["eval_rates_heldin"], truth)
    with capsys.disabled():
        print(f"\nrotation set, eval trials: rate R² LFADS {lfads_r2:.3f}, best smoothing {smoothing_r2:.3f}")
    assert lfads_r2 > smoothing_r2 + 0.2 and lfads_r2 > 0.8
    assert output_attrs["state_latent"] == STATE_LATENT and output_attrs["posterior_samples"] == 5
    assert outputs[f"latents/eval_{STATE_LATENT}"].shape == (60, 30, 16)
    assert not any("inferred_inputs" in key for key in outputs)  # co_dim 0: no controller


def test_outputs_with_controller_heldout_units_and_forward_bins(tmp_path):
    arrays = poisson_counts({"train": 20, "eval": 6}, heldout=2)
    presets = yaml.safe_load(PRESETS.read_text())["models"]
    params = resolve_model("lfads_tiny", presets["lfads_tiny"])
    outputs, _ = train_and_predict(params, arrays, {"bin_width_s": 0.02}, run_dir=tmp_path, seed=0, device="cpu")
    validate_model_output(outputs, arrays, "output.h5")
    assert outputs["eval_rates_heldout_forward"].shape == (6, 3, 2)
    assert outputs["latents/eval_inferred_inputs"].shape == (6, 8, params["co_dim"])
    assert outputs["latents/train_ic_mean"].shape == outputs["latents/train_ic_std"].shape == (20, params["ic_dim"])
    assert outputs["latents/eval_factors"].shape == (6, 8, params["fac_dim"])
    assert all(np.all(np.isfinite(v)) and np.all(v >= 0) for k, v in outputs.items() if "_rates_" in k)


def test_predictions_are_driven_by_the_external_inputs_as_in_training(tmp_path):
    arrays = poisson_counts({"train": 20, "eval": 6}, heldout=2)
    rng = np.random.default_rng(0)
    for split in ("train", "eval"):
        arrays[f"{split}_ext_input"] = rng.normal(size=(len(arrays[f"{split}_spikes_heldin"]), 11, 2)).astype(np.float32)
    params = lfads_params(epochs=2, posterior_samples=0)
    outputs, _ = train_and_predict(params, arrays, {"bin_width_s": 0.02}, run_dir=tmp_path / "a", seed=0, device="cpu")
    silent = {**arrays, "eval_ext_input": np.zeros_like(arrays["eval_ext_input"])}
    without, _ = train_and_predict(params, silent, {"bin_width_s": 0.02}, run_dir=tmp_path / "b", seed=0, device="cpu")
    np.testing.assert_array_equal(outputs["train_rates_heldin"], without["train_rates_heldin"])  # same model
    assert not np.allclose(outputs["eval_rates_heldin"], without["eval_rates_heldin"])


def test_every_preset_resolves():
    presets = yaml.safe_load(PRESETS.read_text())["models"]
    for dataset in ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small"):
        for bin_ms in (5, 20):
            assert f"lfads_{dataset}_{bin_ms}ms" in presets
    for name, section in presets.items():
        params = resolve_model(name, section)
        assert params["kind"] == "lfads"
    assert resolve_model("x", presets["lfads_dmfc_rsg_5ms"])["l2_gen_scale"] == 3e-3
