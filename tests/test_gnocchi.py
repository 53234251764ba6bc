"""GNOCCHI (models/gnocchi): the signal transform, MMD, the forward process, DDIM inversion, conditioning,
training, what the code learns, and reproducible prediction."""

import math

import numpy as np
import torch
from random_counts import poisson_counts
from test_lfads import one_thread  # noqa: F401 (autouse fixture)

from latentdyn.data.prepare import DataShapes, prepare
from latentdyn.metrics.disentanglement import angle_targets, linear_decoding_r2
from latentdyn.models.gnocchi import diffusion, signal
from latentdyn.models.gnocchi.mmd import mmd
from latentdyn.models.kinds import get_kind, resolve_model
from latentdyn.training.contract import Batch, Progress

SHAPES = DataShapes(n_input=5, n_heldout=3, n_bins=8, n_forward=3)
TINY = dict(code_dim=4, channels=8, encoder_size=8, levels=1, dropout=0.0)
IMPL = get_kind("gnocchi").implementation()


def gnocchi_params(**overrides):
    return resolve_model("gnocchi_test", {"kind": "gnocchi", **TINY, **overrides})


def tiny_model(shapes=SHAPES, seed=0, **overrides):
    torch.manual_seed(seed)
    return IMPL.build(gnocchi_params(**overrides), shapes)


def poisson_batch(shapes=SHAPES, n_trials=8, seed=0):
    """Poisson(1.5) counts: held-in window counts and the whole target."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.poisson(torch.full((n_trials, shapes.n_recon_bins, shapes.n_output), 1.5), generator=generator)
    return Batch(target[:, : shapes.n_bins, : shapes.n_input].clone(), target, torch.arange(n_trials))


def adam_steps(model, batch, steps, lr=1e-2):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        result = model.training_step(batch, Progress(step, steps))
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
    return model.eval()


# --- the signal -------------------------------------------------------------------------------------


def test_signal_inverse_returns_the_counts_unsmoothed_and_the_smoothed_counts_smoothed():
    counts = torch.poisson(torch.full((4, 12, 3), 2.0), generator=torch.Generator().manual_seed(0))
    mean, sd = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.0, 2.0])
    back = signal.to_rates(signal.to_signal(counts, 0, mean, sd), mean, sd)
    torch.testing.assert_close(back, counts, rtol=1e-5, atol=1e-5)
    smoothed = signal.gaussian_smooth(counts, 2.0)
    assert not torch.allclose(smoothed, counts, atol=0.1)  # smoothing does something
    back = signal.to_rates(signal.to_signal(counts, 2.0, mean, sd), mean, sd)
    torch.testing.assert_close(back, smoothed, rtol=1e-5, atol=1e-5)


def test_unobserved_bins_are_smoothed_around_and_the_signal_has_no_nan():
    counts = torch.poisson(torch.full((2, 12, 3), 2.0), generator=torch.Generator().manual_seed(1))
    counts[0, 5, 1] = torch.nan  # one bin amid observed bins
    counts[1, :, 2] = torch.nan  # a unit never observed in a trial
    smoothed = signal.gaussian_smooth(counts, 1.0)
    assert torch.isfinite(smoothed[0, 5, 1])
    # the renormalised kernel: a weighted mean of the observed neighbours only
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    weights = torch.exp(-0.5 * offsets**2)
    weights[3] = 0.0
    expected = (weights * counts[0, 2:9, 1].nan_to_num()).sum() / weights.sum()
    torch.testing.assert_close(smoothed[0, 5, 1], expected)
    assert torch.isnan(smoothed[1, :, 2]).all()
    mean, sd = signal.unit_statistics(counts, 1.0)
    assert torch.isfinite(mean).all() and torch.isfinite(sd).all()
    out = signal.to_signal(counts, 1.0, mean, sd)
    assert not torch.isnan(out).any()
    assert (out[1, :, 2] == 0).all()  # nothing in reach: the unit's mean


# --- MMD --------------------------------------------------------------------------------------------


def test_mmd_is_zero_for_identical_samples_and_grows_with_a_shift():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 4, generator=generator)
    y = torch.randn(2000, 4, generator=generator)
    assert abs(mmd(x, x).item()) < 1e-6
    same = mmd(x, y).item()
    shifted = mmd(x, y + 1.0).item()
    # measured: same 3.8e-4, shifted 0.23 (600×)
    assert same < 2e-3
    assert shifted > 10 * same and shifted > 0.05


# --- the forward process ----------------------------------------------------------------------------


def test_forward_process_has_the_marginal_of_the_linear_beta_schedule():
    schedule = diffusion.Schedule(100, 1e-4, 2e-2)
    cumprod = diffusion.alphas_cumprod(schedule, torch.zeros((), dtype=torch.float64))
    betas = np.linspace(1e-4, 2e-2, 100)
    np.testing.assert_allclose(cumprod.numpy(), np.cumprod(1 - betas), rtol=1e-5)
    assert cumprod.dtype == torch.float64
    n = 20000
    clean = torch.tensor([[-1.5, 0.0, 2.0]], dtype=torch.float64).expand(n, 3)
    noise = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (10, 60, 99):
        noisy = diffusion.add_noise(clean, noise, torch.full((n,), t), cumprod)
        a = float(np.prod(1 - betas[: t + 1]))
        # standard errors: of the mean sqrt((1-a)/n), of the variance (1-a) sqrt(2/n); 5 of each
        mean_tolerance = 5 * math.sqrt((1 - a) / n)
        np.testing.assert_allclose(noisy.mean(0).numpy(), math.sqrt(a) * clean[0].numpy(), atol=mean_tolerance)
        np.testing.assert_allclose(noisy.var(0).numpy(), 1 - a, atol=5 * (1 - a) * math.sqrt(2 / n))


# --- DDIM inversion and conditioning ---------------------------------------------------------------


def rms(a, b):
    return (a - b).pow(2).mean().sqrt().item()


def test_ddim_inversion_regenerates_the_trial_from_its_code_and_not_from_another_code_or_noise():
    """η = 0, with the default clamp for sampling: inversion and regeneration run unclamped (a clamp loses
    what it cuts; with it this round trip landed as far from the trial as fresh noise, RMS 1.3)."""
    model = tiny_model(sample_steps=200, eta=0.0)
    batch = poisson_batch()
    model.fit_signal(batch.target)
    adam_steps(model, batch, 40)
    with torch.no_grad():
        code = model.encode(batch.encoder_input)
        clean = model.signal(batch.target)
        inverted = model.invert(batch.target, code)
        back = rms(model.regenerate(inverted, code), clean)
        other_code = rms(model.regenerate(inverted, code.flip(0)), clean)
        fresh = rms(model.generate_signal(code, noise=torch.randn_like(inverted)), clean)
    # measured (RMS, signal s.d. 1): back 0.0076, another code 0.17, fresh noise (clamped sampling) ~1
    assert back < 0.05
    assert other_code > 10 * back
    assert fresh > 10 * back


def test_the_code_has_no_effect_at_init_and_conditions_the_denoiser_after_a_few_steps():
    """The blocks' output convs start at zero, so at init ε̂ ignores the code and the ε loss sends the
    encoder no gradient (only MMD does); a few steps in, both change."""
    model = tiny_model()
    batch = poisson_batch()
    model.fit_signal(batch.target)
    noisy = torch.randn(2, SHAPES.n_output, SHAPES.n_recon_bins, generator=torch.Generator().manual_seed(1))
    steps = torch.tensor([100, 500])
    codes = torch.randn(2, 2, TINY["code_dim"], generator=torch.Generator().manual_seed(2))

    def code_effect():
        with torch.no_grad():
            return (model.denoiser(noisy, steps, codes[0]) - model.denoiser(noisy, steps, codes[1])).abs().max().item()

    def encoder_gradient():
        model.zero_grad()
        model.train().training_step(batch, Progress(0, 1)).terms["eps_mse"].backward()
        norms = [p.grad.norm().item() for p in model.encoder.parameters() if p.grad is not None]
        return sum(norms)

    model.eval()
    assert code_effect() == 0.0
    assert encoder_gradient() == 0.0
    adam_steps(model, batch, 10)
    # measured after 10 steps: code effect 0.27 (max |Δε̂|), summed gradient norm of eps_mse on the encoder 0.027
    assert code_effect() > 1e-3
    assert encoder_gradient() > 1e-6


# --- training ---------------------------------------------------------------------------------------


def test_a_tiny_gnocchi_overfits_a_tiny_set():
    model = tiny_model()
    batch = poisson_batch()
    model.fit_signal(batch.target)

    def eps_mse():  # validation: the same steps and noise every call
        with torch.no_grad():
            return model.eval().validation_step(batch, Progress(0, 1)).terms["eps_mse"].item()

    start = eps_mse()
    adam_steps(model, batch, 150)
    end = eps_mse()
    # measured: 1.17 -> 0.43 (-63 %)
    assert end < 0.6 * start


def reach_data(n_per_direction, seed):
    """Poisson counts (trials × bins × units) of 20 cosine-tuned neurons over 20 bins, `n_per_direction`
    trials of each of 16 reach directions, and each trial's angle: trials differ only by angle and noise."""
    neurons = np.random.default_rng(0)  # the same population in every call
    baseline, gain = neurons.uniform(1.5, 2.5, 20), neurons.uniform(1.0, 1.5, 20)
    preferred = neurons.uniform(0, 2 * np.pi, 20)
    bump = np.exp(-0.5 * ((np.arange(20) - 10) / 3.0) ** 2)
    angles = np.repeat(np.arange(16) * 2 * np.pi / 16, n_per_direction)
    rates = np.exp(baseline + gain * np.cos(angles[:, None, None] - preferred) * bump[:, None])
    return torch.as_tensor(np.random.default_rng(seed).poisson(rates), dtype=torch.float32), angles


def test_the_learned_code_decodes_reach_angle():
    """300 full-batch Adam steps (cosine-decayed 3e-3) on 96 trials; ridge from the 2-D codes of 32 new
    trials to (cos θ, sin θ)."""
    counts, angles = reach_data(6, seed=1)
    test_counts, test_angles = reach_data(2, seed=2)
    shapes = DataShapes(n_input=20, n_heldout=0, n_bins=20, n_forward=0)
    model = tiny_model(shapes, code_dim=2, channels=16, encoder_size=16)
    model.fit_signal(counts)
    order = torch.randperm(len(counts), generator=torch.Generator().manual_seed(0))  # CV folds mix directions

    def decoding_r2():
        with torch.no_grad():
            train_codes, test_codes = model.eval().encode(counts[order]).numpy(), model.encode(test_counts).numpy()
        train_targets = angle_targets(angles[order.numpy()])
        return linear_decoding_r2(train_codes, train_targets, test_codes, angle_targets(test_angles))

    start = decoding_r2()
    batch, steps = Batch(counts, counts, torch.arange(len(counts))), 300
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for step in range(steps):
        loss = model.training_step(batch, Progress(step, steps)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    end = decoding_r2()
    # measured: R² 0.13 at init, 0.91 trained (other init seeds: 0.80 to 0.94; with a 4-D code, 0.5 to 0.75)
    assert start < 0.5
    assert end > 0.8


# --- prediction -------------------------------------------------------------------------------------


def test_predict_is_reproducible_from_sample_seed_and_changes_with_it():
    arrays = poisson_counts({"train": 10, "eval": 4}, heldout=3)
    prepared = prepare(arrays, {"dataset": "random", "bin_width_s": 0.02}, valid_fraction=0.2, seed=0)
    params = gnocchi_params(sample_steps=5, rate_samples=2)
    model = IMPL.build(params, prepared.shapes)
    model.fit_signal(prepared.train.target)
    first = IMPL.predict(model, prepared, params, "cpu")
    second = IMPL.predict(model, prepared, params, "cpu")
    second_model_state = model.state_dict()
    reseeded = gnocchi_params(sample_steps=5, rate_samples=2, sample_seed=1)  # prediction-only: same weights
    model = IMPL.build(reseeded, prepared.shapes)
    model.load_state_dict(second_model_state)
    other = IMPL.predict(model, prepared, reseeded, "cpu")
    assert first.keys() == second.keys() == other.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    rates = [name for name in first if "rates" in name]
    assert rates
    for name in rates:
        assert np.isfinite(first[name]).all() and (first[name] >= 0).all(), name
        assert not np.allclose(first[name], other[name]), name
    np.testing.assert_array_equal(first["latents/eval_code"], other["latents/eval_code"])  # the code is not sampled
