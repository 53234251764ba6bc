"""NDT (models/ndt): masking, local attention, loss, initialisation, inference, training and presets."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_lfads import one_thread, rotation_dataset, tiny_batch  # noqa: F401 (one_thread: autouse fixture)

from latentdyn.errors import ConfigError
from latentdyn.data.format import validate_model_output
from latentdyn.data.prepare import DataShapes, prepare
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.models.components import poisson_nll
from latentdyn.models.kinds import resolve_model
from latentdyn.models.ndt.encoder import additive_attention_mask, local_attention_band
from latentdyn.models.ndt.masking import BinMasking, MaskingSettings
from latentdyn.models.ndt.model import build, predict
from latentdyn.models.pipeline import train_and_predict
from latentdyn.models.smoothing.model import gaussian_window, smooth_spikes
from latentdyn.training.contract import Progress
from random_counts import poisson_counts

PRESETS = Path(__file__).parents[1] / "config" / "presets" / "ndt.yaml"
SHAPES = DataShapes(n_input=5, n_heldout=3, n_bins=8, n_forward=3)  # width 8: two heads of 4
TINY = dict(layers=2, heads=2, ff_dim=16, dropout_embedding=0.0, dropout_attention=0.0, dropout_rates=0.0)
# NLB sizes (README §1): held-in, held-out units; window, forward bins at 5 ms (a quarter at 20 ms)
NLB_SHAPES = {
    "mc_maze": (137, 45, 140, 40),
    "mc_rtt": (98, 32, 120, 40),
    "area2_bump": (49, 16, 120, 40),
    "dmfc_rsg": (40, 14, 300, 40),
    "mc_maze_large": (122, 40, 140, 40),
    "mc_maze_medium": (114, 38, 140, 40),
    "mc_maze_small": (107, 35, 140, 40),
}


def ndt_params(**overrides):
    return resolve_model("ndt_test", {"kind": "ndt", **TINY, **overrides})


def tiny_model(shapes=SHAPES, seed=0, **overrides):
    torch.manual_seed(seed)
    return build(ndt_params(**overrides), shapes)


def masking(**overrides):
    settings = dict(
        mask_ratio=0.25, mask_token_ratio=1.0, random_token_ratio=0.0, max_span=1, span_ramp_start=10, span_ramp_end=20
    )
    return BinMasking(MaskingSettings(**{**settings, **overrides}))


def bin_share_by_run_length(masked):
    """[share of the masked bins lying in runs of length 1, 2, ...], over runs that end before the last
    bin (so none is cut short)."""
    lengths = []
    for row in masked.numpy():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        lengths += [end - start for start, end in zip(edges[::2], edges[1::2]) if end < len(row)]
    bins = np.bincount(lengths) * np.arange(max(lengths) + 1)
    return bins[1:] / bins.sum()


# --- masking ----------------------------------------------------------------------------------------


def test_masked_fraction_matches_the_mask_ratio():
    torch.manual_seed(0)
    masked = masking(mask_ratio=0.25).masked_bins(4000, 50, torch.tensor(0.0), "cpu")
    assert masked.float().mean().item() == pytest.approx(0.25, abs=0.005)
    # with spans the start probability is divided by the span: about mask_ratio of the bins stay masked
    # (a little less, where spans overlap: 1 − (1 − r/w)^w for span w, averaged over w = 1..4)
    masked = masking(mask_ratio=0.25, max_span=4).masked_bins(4000, 400, torch.tensor(50.0), "cpu")
    expected = np.mean([1 - (1 - 0.25 / w) ** w for w in range(1, 5)])
    assert masked.float().mean().item() == pytest.approx(expected, abs=0.01)


def test_spans_are_ramped_in_and_uniform_up_to_max_span():
    torch.manual_seed(1)
    spans = masking(mask_ratio=0.04, max_span=4, span_ramp_start=10, span_ramp_end=20)
    assert [spans.span_probability(torch.tensor(float(e))).item() for e in (0, 10, 15, 20, 99)] == [0, 0, 0.5, 1, 1]
    before = bin_share_by_run_length(spans.masked_bins(2000, 100, torch.tensor(5.0), "cpu"))
    assert before[0] > 0.9  # longer runs only where two starts happen to be adjacent
    # span w starts with probability mask_ratio / w: each span length carries an equal share of masked bins
    after = bin_share_by_run_length(spans.masked_bins(4000, 100, torch.tensor(30.0), "cpu"))
    assert after[:4] == pytest.approx([0.25] * 4, abs=0.03) and after[4:].sum() < 0.05
    halfway = bin_share_by_run_length(spans.masked_bins(4000, 100, torch.tensor(15.0), "cpu"))
    assert halfway[0] == pytest.approx(0.5 * before[0] + 0.5 * after[0], abs=0.02)  # half the trials still use span 1
    step = masking(span_ramp_start=7, span_ramp_end=7)  # no ramp: spans from epoch 7 on
    assert step.span_probability(torch.tensor(6.0)).item() == 0 and step.span_probability(torch.tensor(7.0)).item() == 1


def test_masked_entries_are_zeroed_randomised_or_kept_in_the_configured_ratios():
    torch.manual_seed(2)
    counts = torch.full((400, 50, 20), 5.0)
    corrupted, masked = masking(mask_ratio=1.0, mask_token_ratio=0.6, random_token_ratio=0.5)(counts, torch.tensor(0.0))
    assert masked.all()
    share = np.bincount(corrupted.flatten().long().numpy(), minlength=6) / corrupted.numel()
    random_each = 0.4 * 0.5 / 5  # random counts are uniform over 0..4: below the batch's largest count, as NDT draws them
    expected = [0.6 + random_each] + [random_each] * 4 + [0.4 * 0.5]
    assert share == pytest.approx(expected, abs=0.005)
    corrupted, masked = masking(mask_ratio=0.3)(counts, torch.tensor(0.0))
    assert torch.equal(corrupted[~masked], counts[~masked]) and corrupted[masked].eq(0).all()


# --- attention --------------------------------------------------------------------------------------


def test_local_attention_band():
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 1],
            [0, 0, 0, 1, 1, 1],
        ],
        dtype=torch.bool,
    )  # [query, key]: 2 bins back, 1 forward
    assert torch.equal(local_attention_band(6, backward=2, forward=1), expected)
    assert torch.equal(local_attention_band(4, backward=None, forward=0), torch.ones(4, 4).tril().bool())
    mask = additive_attention_mask(6, 2, 1)
    assert torch.equal(mask == 0, expected) and mask[~expected].eq(-math.inf).all()
    assert additive_attention_mask(6, None, None) is None


def test_a_bin_reaches_only_the_bins_whose_context_holds_it():
    """One layer, 2 back / 1 forward: a change at bin 4 moves the states of bins 3..6 only (query q sees
    keys q − 2 .. q + 1); with unlimited context it moves every bin."""
    shapes = DataShapes(n_input=4, n_heldout=0, n_bins=10, n_forward=0)
    for context, moved in (((2, 1), [3, 4, 5, 6]), ((None, None), list(range(10)))):
        model = tiny_model(shapes, layers=1, context_backward=context[0], context_forward=context[1]).eval()
        x = torch.rand(1, 10, 4)
        changed = x.clone()
        changed[:, 4, 0] += 1.0  # one unit: a change shared by every unit would vanish in the layer norms
        with torch.no_grad():
            difference = (model.infer(x)[1] - model.infer(changed)[1]).abs().amax(-1)[0]
        assert (difference > 1e-6).nonzero().flatten().tolist() == moved


def test_heads_must_divide_the_width():
    odd = DataShapes(n_input=4, n_heldout=1, n_bins=6, n_forward=0)
    with pytest.raises(ConfigError, match="key 'heads'.*width 5.*4 held-in \\+ 1 held-out"):
        tiny_model(odd)
    assert tiny_model(odd, embedding="linear", embed_dim=6).width == 6
    with pytest.raises(ConfigError, match="key 'embed_dim'"):
        tiny_model(embed_dim=8)


def test_original_initialisation_is_torchs_layer_scaled_then_copied():
    """neural-data-transformers' effective scheme, for width d = 64, 4 layers, feed-forward f = 256:
    packed q/k/v Xavier-uniform as one 3d × d matrix, bound √(6 / 4d), v unscaled; output and
    feed-forward weights uniform(±s/√fan_in), s = 0.67·4^(−1/4); feed-forward biases uniform(±1/√fan_in),
    unscaled; q/k/v and output biases zero; every layer the same. uniform(±b) has std b/√3."""
    width, ff_dim, layers = 64, 256, 4
    model = tiny_model(DataShapes(n_input=width, n_heldout=0, n_bins=4, n_forward=0), layers=layers, ff_dim=ff_dim)
    scale = 0.67 * layers**-0.25
    assert scale == pytest.approx(0.474, abs=5e-4)  # the 0.474 is this factor at N = 4 layers

    def assert_uniform(values, bound, rel=0.03):
        assert values.abs().max().item() <= bound * (1 + 1e-6)
        assert values.abs().max().item() > 0.8 * bound
        assert values.std().item() == pytest.approx(bound / math.sqrt(3), rel=rel)

    first = model.encoder.layers[0]
    attention, ff = first.attention, first.ff
    for block in attention.qkv.weight.chunk(3):  # q, k and v alike: the value scaling never ran
        assert_uniform(block, math.sqrt(6 / (4 * width)))
    assert_uniform(attention.out.weight, scale / math.sqrt(width))
    assert_uniform(ff[0].weight, scale / math.sqrt(width))
    assert_uniform(ff[3].weight, scale / math.sqrt(ff_dim))
    assert_uniform(ff[0].bias, 1 / math.sqrt(width), rel=0.1)  # 256 draws
    assert_uniform(ff[3].bias, 1 / math.sqrt(ff_dim), rel=0.2)  # 64 draws
    assert attention.qkv.bias.eq(0).all() and attention.out.bias.eq(0).all()
    assert first.attention_norm.weight.eq(1).all() and first.ff_norm.bias.eq(0).all()
    for layer in model.encoder.layers[1:]:
        for (name, value), copied in zip(first.state_dict().items(), layer.state_dict().values()):
            assert torch.equal(value, copied), name


def test_t_fixup_initialisation():
    width, layers = 64, 4
    shapes = DataShapes(n_input=width, n_heldout=0, n_bins=4, n_forward=0)
    model = tiny_model(shapes, layers=layers, ff_dim=256, init="t_fixup")
    xavier = lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))  # noqa: E731
    scale = 0.67 * layers**-0.25
    for layer in model.encoder.layers:
        q, k, v = layer.attention.qkv.weight.chunk(3)
        assert q.std().item() == pytest.approx(xavier(width, width), rel=0.05)
        assert k.std().item() == pytest.approx(xavier(width, width), rel=0.05)
        assert v.std().item() == pytest.approx(scale * xavier(width, width), rel=0.05)
        assert layer.attention.out.weight.std().item() == pytest.approx(scale * xavier(width, width), rel=0.05)
        assert layer.ff[0].weight.std().item() == pytest.approx(scale * xavier(width, 256), rel=0.05)
        assert layer.ff[3].weight.std().item() == pytest.approx(scale * xavier(256, width), rel=0.05)
        for linear in (layer.attention.qkv, layer.attention.out, layer.ff[0], layer.ff[3]):
            assert linear.bias.eq(0).all()
    first, second = model.encoder.layers[:2]
    assert not torch.equal(first.ff[0].weight, second.ff[0].weight)  # each layer drawn on its own


# --- loss -------------------------------------------------------------------------------------------


def test_loss_counts_masked_heldin_bins_and_every_heldout_and_forward_entry():
    model = tiny_model(mask_ratio=0.3, max_span=2)
    recorded = {}
    model.masking.register_forward_hook(
        lambda module, inputs, output: recorded.update(epoch=inputs[1], masked=output[1])
    )

    def keep_log_rates(module, inputs, output):
        output.retain_grad()
        recorded["log_rates"] = output

    model.readout.register_forward_hook(keep_log_rates)
    batch = tiny_batch(SHAPES, n_trials=12)
    progress = Progress(epoch=0, total_epochs=10)
    progress.epoch_tensor = torch.tensor(4.0)  # the CUDA-graph path: the epoch as a tensor is what masking reads
    torch.manual_seed(3)
    result = model.train().training_step(batch, progress)
    assert recorded["epoch"] is progress.epoch_tensor
    assert set(result.terms) == {"recon_masked", "recon_heldout", "recon_forward"}
    masked, log_rates = recorded["masked"], recorded["log_rates"]
    n_bins, n_input = SHAPES.n_bins, SHAPES.n_input
    counted = torch.ones_like(batch.target, dtype=torch.bool)
    counted[:, :n_bins, :n_input] = masked.unsqueeze(-1).expand(-1, -1, n_input)
    assert 0.15 < masked.float().mean() < 0.45
    torch.testing.assert_close(result.loss, poisson_nll(log_rates, torch.where(counted, batch.target, torch.nan)))
    result.loss.backward()
    grad = log_rates.grad
    assert grad[~counted].abs().max() == 0 and (grad[counted] != 0).all()
    # an unmasked held-in target entry does not count: changing it leaves the loss as it was
    trial, bin_ = (~masked).nonzero()[0].tolist()
    perturbed = tiny_batch(SHAPES, n_trials=12)
    perturbed.target[trial, bin_, 0] += 7.0
    torch.manual_seed(3)
    torch.testing.assert_close(model.training_step(perturbed, progress).loss, result.loss)
    perturbed.target[:, n_bins:, n_input:] += 1.0  # held-out units' forward bins always count
    torch.manual_seed(3)
    assert model.training_step(perturbed, progress).loss != result.loss


def test_validation_reconstructs_everything_unmasked_and_skips_unobserved_entries():
    model = tiny_model().eval()
    batch = tiny_batch(SHAPES)
    batch.target[0, 2, 1] = torch.nan
    batch.encoder_input[0, 2, 1] = torch.nan
    with torch.no_grad():
        result = model.validation_step(batch, Progress(0, 1))
        log_rates, _ = model.infer(batch.encoder_input)
    torch.testing.assert_close(result.loss, poisson_nll(log_rates, batch.target))
    assert result.terms["recon"] is result.loss and torch.isfinite(result.loss)
    assert set(result.terms) == {"recon", "recon_heldout", "recon_forward", "masked_nll"}
    assert torch.isfinite(result.terms["masked_nll"])
    torch.testing.assert_close(
        result.terms["recon_forward"], poisson_nll(log_rates[:, SHAPES.n_bins :], batch.target[:, SHAPES.n_bins :])
    )


def test_masked_validation_scores_only_entries_hidden_from_the_input():
    """valid_masked_nll: fixed masked bins per trial index, zeroed at the input; it scores their held-in
    entries and every held-out unit and forward bin, and no entry the model reads."""
    model = tiny_model(mask_ratio=0.3).eval()
    batch = tiny_batch(SHAPES, n_trials=40)
    n_bins, n_input = SHAPES.n_bins, SHAPES.n_input

    def masked_nll(batch):
        with torch.no_grad():
            return model.validation_step(batch, Progress(0, 1)).terms["masked_nll"]

    masked = model.validation_masked_bins(batch.trial_index)
    assert masked.shape == (40, n_bins) and 0.2 < masked.float().mean() < 0.4
    # fixed by the trial's index: the same in any epoch and in any batch order
    order = torch.randperm(40)
    assert torch.equal(model.validation_masked_bins(batch.trial_index[order]), masked[order])
    with torch.no_grad():
        assert model.validation_step(batch, Progress(7, 9)).terms["masked_nll"] == masked_nll(batch)
    # what it is: the NLL of the scored entries, from the input with the masked bins zeroed
    with torch.no_grad():
        log_rates, _ = model.infer(torch.where(masked.unsqueeze(-1), 0.0, batch.encoder_input))
    scored = torch.ones_like(batch.target, dtype=torch.bool)
    scored[:, :n_bins, :n_input] = masked.unsqueeze(-1)
    reference = masked_nll(batch)
    torch.testing.assert_close(reference, poisson_nll(log_rates, torch.where(scored, batch.target, torch.nan)))

    def changed(where, in_input):
        """masked_nll with one entry of the input or of the target changed."""
        perturbed = tiny_batch(SHAPES, n_trials=40)
        (perturbed.encoder_input if in_input else perturbed.target)[where] += 5.0
        return masked_nll(perturbed)

    visible = tuple((~masked).nonzero()[0].tolist()) + (1,)
    hidden = tuple(masked.nonzero()[0].tolist()) + (1,)
    assert changed(visible, in_input=False) == reference  # an entry it reads is never scored
    assert changed(hidden, in_input=True) == reference  # a masked entry is not read
    assert changed(hidden, in_input=False) != reference  # ... but scored
    assert changed(visible, in_input=True) != reference  # the visible entries are the model's context
    assert changed((0, 2, n_input), in_input=False) != reference  # held-out units count
    assert changed((0, n_bins, 0), in_input=False) != reference  # and forward bins


# --- inference --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"embedding": "linear", "embed_dim": 12, "positions": "sinusoidal"},
        {"context_backward": None, "context_forward": None},
    ],
    ids=["identity-learned", "linear-sinusoidal", "full-context"],
)
def test_predict_is_the_training_forward_in_eval_mode_with_nothing_masked(options):
    model = tiny_model(dropout_embedding=0.3, dropout_attention=0.3, dropout_rates=0.3, **options)
    arrays = poisson_counts({"train": 10, "eval": 4}, heldout=3)
    prepared = prepare(arrays, {}, valid_fraction=0.2, seed=0)
    outputs = predict(model, prepared, {}, "cpu")
    assert not model.training
    tokens = torch.zeros(4, SHAPES.n_recon_bins, SHAPES.n_output)
    tokens[:, : SHAPES.n_bins, : SHAPES.n_input] = torch.as_tensor(arrays["eval_spikes_heldin"])
    with torch.no_grad():
        log_rates, states = model(tokens)
        model.train()
        assert not torch.allclose(model(tokens)[0], log_rates)  # dropout: eval mode matters
    rates = log_rates.exp().numpy()
    np.testing.assert_allclose(outputs["eval_rates_heldin"], rates[:, :8, :5], rtol=1e-5)
    np.testing.assert_allclose(outputs["eval_rates_heldout"], rates[:, :8, 5:], rtol=1e-5)
    np.testing.assert_allclose(outputs["eval_rates_heldin_forward"], rates[:, 8:, :5], rtol=1e-5)
    np.testing.assert_allclose(outputs["eval_rates_heldout_forward"], rates[:, 8:, 5:], rtol=1e-5)
    np.testing.assert_allclose(outputs["latents/eval_states"], states.numpy(), rtol=1e-5, atol=1e-6)
    assert outputs["latents/train_states"].shape == (10, SHAPES.n_recon_bins, model.width)
    validate_model_output(outputs, arrays, "output.h5")


# --- training ---------------------------------------------------------------------------------------


def test_a_tiny_ndt_overfits_a_tiny_set():
    """The held-out units and forward bins, which are always in the loss, are memorised: their NLL falls
    far, and below that of the true rates (the model learns the noise of each of 8 trials)."""
    model = tiny_model()
    batch = tiny_batch(SHAPES, n_trials=8)
    true_rates = torch.full_like(batch.target, math.log(1.5))
    unseen = {
        "recon_heldout": (slice(None), slice(0, SHAPES.n_bins), slice(SHAPES.n_input, None)),
        "recon_forward": (slice(None), slice(SHAPES.n_bins, None)),
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def recon():
        with torch.no_grad():
            terms = model.eval().validation_step(batch, Progress(0, 1)).terms
        return {name: terms[name].item() for name in unseen}

    start = recon()
    for step in range(300):
        result = model.train().training_step(batch, Progress(step, 300))
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
    end = recon()
    for name, entries in unseen.items():
        true_rate_nll = poisson_nll(true_rates[entries], batch.target[entries]).item()
        assert end[name] < min(start[name] - 0.4, true_rate_nll - 0.25), name


def test_ndt_recovers_rates_better_than_smoothing(tmp_path, capsys):
    """Measured (seeds 0-3): rate R² 0.47-0.70 (default `init: original`; 0.67-0.73 with `t_fixup`, which
    this small model at 10× NDT's learning rate favours) against 0.30 for the best smoothing."""
    arrays, attrs = rotation_dataset()
    truth = arrays["eval_true_rates_heldin"]
    smoothing_r2 = max(
        rate_r2(smooth_spikes(arrays["eval_spikes_heldin"], gaussian_window(sd, 20)), truth)
        for sd in (20, 40, 60, 80, 100)
    )
    params = resolve_model(
        "ndt_test",
        dict(
            kind="ndt",
            layers=2,
            heads=2,
            ff_dim=32,
            dropout_embedding=0.1,
            dropout_attention=0.1,
            dropout_rates=0.1,
            mask_token_ratio=0.75,
            random_token_ratio=0.9,
            max_span=3,
            span_ramp_start=20,
            span_ramp_end=60,
            epochs=150,
            batch_size=20,
            learning_rate=1e-2,
            scheduler={"kind": "warmup_cosine", "warmup_epochs": 10},
            early_stopping=None,
        ),
    )
    outputs, output_attrs = train_and_predict(params, arrays, attrs, run_dir=tmp_path, seed=0, device="cpu")
    ndt_r2 = rate_r2(outputs["eval_rates_heldin"], truth)
    with capsys.disabled():
        print(f"\nrotation set, eval trials: rate R² NDT {ndt_r2:.3f}, best smoothing {smoothing_r2:.3f}")
    assert ndt_r2 > smoothing_r2 + 0.15
    assert "state_latent" not in output_attrs and output_attrs["posterior_samples"] == 0
    assert outputs["latents/eval_states"].shape == (60, 30, 20)  # identity embedding: width = 20 neurons
    validate_model_output(outputs, arrays, "output.h5")


def test_tiny_preset_trains_with_heldout_units_and_forward_bins(tmp_path):
    arrays = poisson_counts({"train": 20, "eval": 6}, heldout=3)
    presets = yaml.safe_load(PRESETS.read_text())["models"]
    params = resolve_model("ndt_tiny", presets["ndt_tiny"])
    outputs, _ = train_and_predict(params, arrays, {"bin_width_s": 0.02}, run_dir=tmp_path, seed=0, device="cpu")
    validate_model_output(outputs, arrays, "output.h5")
    history = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    assert {
        "train_recon_masked",
        "train_recon_heldout",
        "train_recon_forward",
        "valid_recon",
        "valid_recon_heldout",
        "valid_masked_nll",
    } <= set(history)
    assert outputs["eval_rates_heldout_forward"].shape == (6, 3, 3)
    assert outputs["latents/eval_states"].shape == (6, 11, params["embed_dim"])


# --- presets ----------------------------------------------------------------------------------------


def test_every_preset_resolves_and_builds_at_its_datasets_size():
    presets = yaml.safe_load(PRESETS.read_text())["models"]
    for dataset, (n_input, n_heldout, n_bins, n_forward) in NLB_SHAPES.items():
        for bin_ms in (5, 20):
            params = resolve_model(f"ndt_{dataset}_{bin_ms}ms", presets[f"ndt_{dataset}_{bin_ms}ms"])
            shrink = bin_ms // 5
            build(params, DataShapes(n_input, n_heldout, n_bins // shrink, n_forward // shrink))
    for name, section in presets.items():
        assert resolve_model(name, section)["kind"] == "ndt"
    mc_maze = resolve_model("x", presets["ndt_mc_maze_5ms"])
    assert (
        mc_maze["layers"],
        mc_maze["heads"],
        mc_maze["ff_dim"],
        mc_maze["context_backward"],
        mc_maze["context_forward"],
    ) == (4, 2, 128, 8, 4)
    assert (mc_maze["optimizer"], mc_maze["weight_decay"], mc_maze["grad_clip"], mc_maze["mask_ratio"]) == (
        "adamw",
        5e-5,
        200.0,
        0.25,
    )
    assert resolve_model("x", presets["ndt_dmfc_rsg_5ms"])["layers"] == 6
