"""LFADS: latent factor analysis via dynamical systems, after lfads-torch (README §7, §5).

Encoders (encoders.py) give the initial condition's posterior and the controller's input; the decoder
(decoder.py) unrolls controller and generator (generators.py: clipped GRU or neural ODE) to factors;
the readout maps factors to a reconstruction distribution (distributions.py). Training adds SBTT,
coordinated dropout and sample validation (augmentations.py), KL terms against the priors (priors.py)
and an L2 penalty on recurrent weights, each ramped in:

    loss = loss_scale · (recon + l2_ramp · L2 + kl_ramp · (kl_ic_scale · KL_ic + kl_co_scale · KL_co))

with recon the mean NLL per counted entry. The step is CUDA-graph capturable (`graph_safe`): only
tensor arithmetic, ramps from `progress.epoch_tensor` when the trainer provides it. lfads-torch also
ramps weight decay with the L2 ramp; the shared trainer applies a constant weight decay (the LFADS
presets use none).
"""

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from latentdyn.errors import ConfigError
from latentdyn.metrics.ground_truth import rate_r2
from latentdyn.models import augmentations
from latentdyn.models.lfads.decoder import Decoder, DecoderOutput
from latentdyn.models.lfads.distributions import Readout, make_distribution
from latentdyn.models.lfads.encoders import ControllerInputEncoder, InitialConditionEncoder, encode_both
from latentdyn.models.lfads.generators import ClippedGRUGenerator, NeuralODEGenerator
from latentdyn.models.lfads.layers import apply_dropout
from latentdyn.models.lfads.priors import AutoregressivePrior, NormalPrior
from latentdyn.models.prediction import predict_in_chunks
from latentdyn.training.contract import StepResult

TRUE_RATES = ("true_rates_heldin", "true_rates_heldout")  # the order of the readout's units

STATE_LATENT = "gen_states"  # the generator state is LFADS's dynamical state
CODE_LATENT = "ic_mean"  # a trial's code: the posterior mean of its initial condition
PREDICT_ROWS = 2048  # trials × posterior samples decoded at once in `predict`


@dataclass(frozen=True)
class Ramp:
    """0 before `start`, then rising linearly to 1 over `length` epochs: clamp((e + 1 − start)/(length + 1), 0, 1)."""

    start: int
    length: int

    def __call__(self, epoch):
        return ((epoch + 1 - self.start) / (self.length + 1)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class LossWeights:
    """How the loss's terms are weighted: the hyperparameters population-based training mutates."""

    loss_scale: float
    kl_ic_scale: float
    kl_co_scale: float
    l2_gen_scale: float
    l2_con_scale: float
    kl_ramp: Ramp
    l2_ramp: Ramp

    @classmethod
    def from_params(cls, params):
        return cls(
            loss_scale=params["loss_scale"],
            kl_ic_scale=params["kl_ic_scale"],
            kl_co_scale=params["kl_co_scale"],
            l2_gen_scale=params["l2_gen_scale"],
            l2_con_scale=params["l2_con_scale"],
            kl_ramp=Ramp(params["kl_start_epoch"], params["kl_increase_epochs"]),
            l2_ramp=Ramp(params["l2_start_epoch"], params["l2_increase_epochs"]),
        )


@dataclass(frozen=True)
class Augmentation:
    """Coordinated dropout and sample-validation settings (rates 0 = off)."""

    cd_rate: float
    sv_rate: float
    sv_seed: int
    ic_enc_seq_len: int


@dataclass
class LFADSOutput:
    params: torch.Tensor  # trials × bins × neurons × distribution parameters
    ic_mean: torch.Tensor
    ic_std: torch.Tensor
    decoded: DecoderOutput


class LFADS(nn.Module):
    graph_safe = True
    FUSED_MEAN = True  # `_mean_over_entries` is the plain masked mean that the fused Poisson NLL computes

    def __init__(
        self, ic_encoder, ci_encoder, decoder, readout, distribution, ic_prior, co_prior, weights, augmentation, dropout_rate
    ):
        super().__init__()
        self.input_dropout = nn.Dropout(dropout_rate)
        self.ic_encoder = ic_encoder
        self.ci_encoder = ci_encoder  # None without a controller
        self.decoder = decoder
        self.readout = readout
        self.distribution = distribution
        self.ic_prior = ic_prior
        self.co_prior = co_prior  # None without a controller
        self.weights = weights
        self.augmentation = augmentation

    @property
    def dynamics(self):
        """The generator: `step` and `fixed_point_residual` of its zero-input map (fixed-point analysis)."""
        return self.decoder.generator

    def encode(self, inputs):
        """(IC mean, IC std, controller-input encoding or None) of inputs with unobserved entries zeroed."""
        inputs = apply_dropout(self.input_dropout, inputs, not self.decoder.eager)
        if self.ci_encoder is None:
            return (*self.ic_encoder(inputs), None)
        return encode_both(self.ic_encoder, self.ci_encoder, inputs)

    def decode(self, ic_mean, ic_std, ci, ext_input=None, sample=True):
        ic_sample = ic_mean + ic_std * torch.randn_like(ic_mean) if sample else ic_mean
        decoded = self.decoder(ic_sample, ci, ext_input, sample)
        return LFADSOutput(self.readout(decoded.factors), ic_mean, ic_std, decoded)

    def forward(self, inputs, ext_input=None, sample=True):
        return self.decode(*self.encode(inputs), ext_input, sample)

    def training_step(self, batch, progress):
        return self._step(batch, progress, coordinated_dropout=self.augmentation.cd_rate > 0)

    def validation_step(self, batch, progress):
        """The validation loss terms and, on data with ground truth, `rate_r2`: the rate R² of the
        posterior-mean rates against the true rates (metrics.ground_truth), so that a history shows
        what the CD / sample-validation paper plots (README §9): whether the validation NLL and the rates'
        fidelity to the truth move together while training."""
        result = self._step(batch, progress, coordinated_dropout=False)
        true_rates = [batch.truth[key] for key in TRUE_RATES if key in batch.truth]
        if true_rates:
            truth = torch.cat(true_rates, dim=-1)
            inputs = augmentations.unobserved_as_zero(batch.encoder_input)
            params = self(inputs, batch.ext_input, sample=False).params
            rates = self.distribution.mean(params)[:, : truth.shape[1], : truth.shape[2]]
            result.terms["rate_r2"] = rate_r2(rates.detach().cpu().numpy(), truth.cpu().numpy())
        return result

    def _step(self, batch, progress, coordinated_dropout):
        """Posteriors are sampled in training and validation alike (lfads-torch)."""
        aug = self.augmentation
        inputs = augmentations.unobserved_as_zero(batch.encoder_input)
        observed = batch.observed
        target = torch.where(observed, batch.target, 1.0)  # a finite stand-in; not counted
        counted, held = observed, None
        if aug.sv_rate > 0:
            held_inputs = self._sample_validation_mask(batch.trial_index, inputs.shape[1:])
            inputs = augmentations.remove_held_out(inputs, held_inputs, aug.sv_rate)
            held = augmentations.pad_to(held_inputs, target.shape, False) & observed
            counted = observed & ~held
        if coordinated_dropout:
            inputs, dropped = augmentations.coordinated_dropout(inputs, aug.cd_rate, aug.ic_enc_seq_len)
        output = self(inputs, batch.ext_input, sample=True)
        trained = augmentations.cd_gradient_mask(dropped, target.shape, aug.ic_enc_seq_len) if coordinated_dropout else None
        fusable = self.FUSED_MEAN and not self.decoder.eager and hasattr(self.distribution, "masked_mean_nll")
        if held is None and fusable:
            recon = self.distribution.masked_mean_nll(output.params, target, counted, trained)  # the same, fused
        else:
            nll = self.distribution.nll(output.params, target)
            if trained is not None:
                nll = augmentations.gradient_only_where(nll, trained)
            recon = self._mean_over_entries(nll, counted)
        terms = {
            "recon": recon,
            "kl_ic": self.ic_prior.kl(output.ic_mean, output.ic_std),
            "kl_co": self._zero() if self.co_prior is None else self.co_prior.kl(output.decoded.co_mean, output.decoded.co_std),
            "l2": self.l2_penalty(),
        }
        epoch = progress.epoch_tensor
        epoch = torch.tensor(float(progress.epoch)) if epoch is None else epoch
        w = self.weights
        terms["kl_ramp"], terms["l2_ramp"] = w.kl_ramp(epoch), w.l2_ramp(epoch)
        kl = w.kl_ic_scale * terms["kl_ic"] + w.kl_co_scale * terms["kl_co"]
        loss = w.loss_scale * (terms["recon"] + terms["l2_ramp"] * terms["l2"] + terms["kl_ramp"] * kl)
        if held is not None:
            terms["sv_nll"] = self._mean_over_entries(nll.detach(), held)
        return StepResult(loss, terms)

    def latents_by_trial(self, value):
        """A latent of the encoded trials (trials first) as the output's trials have it: itself here."""
        return value

    def _sample_validation_mask(self, trial_index, shape):
        """Input entries (bins × units per trial) held out for sample validation, fixed per trial."""
        aug = self.augmentation
        return augmentations.sample_validation_mask(trial_index, shape, aug.sv_rate, aug.sv_seed, aug.ic_enc_seq_len)

    def _mean_over_entries(self, values, included):
        """The reconstruction's mean over the `included` entries (a multisession model averages per session)."""
        return augmentations.masked_mean(values, included)

    def l2_penalty(self):
        """Σ scale · ½‖U‖² over the generator's and controller's recurrent weights, divided by the number of
        elements of those with a nonzero scale (lfads-torch)."""
        weighted = [(weight, self.weights.l2_gen_scale) for weight in self.dynamics.recurrent_weights()]
        if self.co_prior is not None:
            weighted += [(weight, self.weights.l2_con_scale) for weight in self.decoder.controller.recurrent_weights()]
        weighted = [(weight, scale) for weight, scale in weighted if scale > 0]
        if not weighted:
            return self._zero()
        penalty = sum(scale * 0.5 * weight.pow(2).sum() for weight, scale in weighted)
        return penalty / sum(weight.numel() for weight, _ in weighted)

    def set_hyperparameters(self, params):
        """Apply (possibly mutated) dropout, KL/L2 scales and ramps, and CD rate after a restore."""
        self.weights = LossWeights.from_params(params)
        self.augmentation = Augmentation(params["cd_rate"], params["sv_rate"], params["sv_seed"], params["ic_enc_seq_len"])
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = params["dropout_rate"]

    def _zero(self):
        return self.ic_prior.mean.new_zeros(())


def build(params, shapes):
    return LFADS(**parts(params, shapes, shapes.n_input))


def parts(params, shapes, n_input):
    """LFADS's constructor arguments for data of `shapes` whose encoders read `n_input` channels (the
    held-in units, or a multisession model's read-in)."""
    n_recon_bins, clip, eager = shapes.n_recon_bins, params["cell_clip"], params["eager_recurrence"]
    if params["ic_enc_seq_len"] >= shapes.n_bins:
        raise ConfigError(
            f"config: key 'ic_enc_seq_len': {params['ic_enc_seq_len']} leaves none of the {shapes.n_bins} bins"
            " to the controller-input encoder"
        )
    co_dim, dropout_rate = params["co_dim"], params["dropout_rate"]
    ic_encoder = InitialConditionEncoder(
        n_input,
        params["ic_enc_dim"],
        params["ic_dim"],
        clip,
        params["ic_post_var_min"],
        dropout_rate,
        params["ic_enc_seq_len"],
        eager,
    )
    ci_encoder = co_prior = None
    if co_dim:
        ci_encoder = ControllerInputEncoder(
            n_input, params["ci_enc_dim"], clip, params["ci_lag"], params["ic_enc_seq_len"], n_recon_bins, eager
        )
        co_prior = AutoregressivePrior(co_dim, params["co_prior_tau"], params["co_prior_nvar"])
    generator_inputs = shapes.n_ext + co_dim
    if params["generator"] == "gru":
        generator = ClippedGRUGenerator(generator_inputs, params["gen_dim"], clip)
    else:
        generator = NeuralODEGenerator(
            generator_inputs, params["gen_dim"], params["node_hidden"], n_recon_bins + 1, params["solver"]
        )
    decoder = Decoder(
        generator,
        ic_dim=params["ic_dim"],
        gen_dim=params["gen_dim"],
        fac_dim=params["fac_dim"],
        ci_size=0 if ci_encoder is None else ci_encoder.output_size,
        con_dim=params["con_dim"],
        co_dim=co_dim,
        n_ext=shapes.n_ext,
        n_bins=n_recon_bins,
        clip=clip,
        dropout_rate=dropout_rate,
        eager=eager,
    )
    distribution = make_distribution(params["reconstruction"], shapes.n_output, params["zig_location"])
    return dict(
        ic_encoder=ic_encoder,
        ci_encoder=ci_encoder,
        decoder=decoder,
        readout=Readout(params["fac_dim"], shapes.n_output, distribution.n_params),
        distribution=distribution,
        ic_prior=NormalPrior(params["ic_dim"], params["ic_prior_var"]),
        co_prior=co_prior,
        weights=LossWeights.from_params(params),
        augmentation=Augmentation(params["cd_rate"], params["sv_rate"], params["sv_seed"], params["ic_enc_seq_len"]),
        dropout_rate=dropout_rate,
    )


def predict(model, prepared, params, device):
    """Rates and latents of every split: posterior means averaged over `posterior_samples` draws.

    Eval mode (no dropout); each chunk of trials is encoded once and decoded for all its samples in
    one batch on the device, and moved off it at once (lfads-torch issue #27: outputs kept on the GPU
    ran it out of memory). With 0 samples the posterior means are decoded instead. Latents over bins
    cover the window (the output format's bins); rates cover the forward bins too.
    """
    n_samples = params["posterior_samples"]
    average = partial(_posterior_average, n_samples=n_samples, n_bins=prepared.shapes.n_bins)
    return predict_in_chunks(model, prepared, device, average, max(1, PREDICT_ROWS // max(n_samples, 1)))


def infer_rates(model, encoder_input):
    """Rates of one pass decoding the posterior means, no sampling: a real-time decoder's call (the
    latency study times it), the rates `predict` gives with `posterior_samples: 0`."""
    output = model(augmentations.unobserved_as_zero(encoder_input), sample=False)
    return model.distribution.mean(output.params).clamp_min(0.0)


def _posterior_average(model, encoder_input, ext_input, n_samples, n_bins):
    """Rates and latents averaged over `n_samples` posterior draws per trial (0: the means decoded once),
    the generator driven by the trials' external inputs as in training; latents over bins cut to the
    window."""
    ic_mean, ic_std, ci = model.encode(augmentations.unobserved_as_zero(encoder_input))
    sample = n_samples > 0
    repeats = max(n_samples, 1)

    def per_draw(value):
        return None if value is None else value.repeat_interleave(repeats, dim=0)

    output = model.decode(per_draw(ic_mean), per_draw(ic_std), per_draw(ci), per_draw(ext_input), sample=sample)
    decoded = output.decoded

    def average(value):
        return value.unflatten(0, (-1, repeats)).mean(1)

    latents = {
        "factors": average(decoded.factors)[:, :n_bins],
        STATE_LATENT: average(decoded.gen_states)[:, :n_bins],
        "inferred_inputs": average(decoded.co_mean)[:, :n_bins],
        "ic_mean": ic_mean,
        "ic_std": ic_std,
    }
    # Gaussian means may be negative; the output format's rates are not.
    rates = average(model.distribution.mean(output.params).clamp_min(0.0))
    return {"rates": rates, **{name: model.latents_by_trial(value) for name, value in latents.items()}}


@torch.no_grad()
def generate(model, codes):
    """Rates of the trials whose initial conditions are `codes` (trials × ic_dim): the generator started
    from each, the controller fed a zero input encoding (there is no trial to infer inputs from) and its
    inferred inputs taken at their mean. Deterministic: what LFADS puts into inferred inputs, a trial's
    own variability among it, is not generated."""
    model.eval()
    decoder = model.decoder
    ci = None
    if decoder.co_dim:
        ci_size = decoder.controller.input_size - decoder.factor_map.weight.shape[0]
        ci = codes.new_zeros(len(codes), decoder.n_bins, ci_size)
    output = model.decode(codes, torch.zeros_like(codes), ci, sample=False)
    return model.distribution.mean(output.params).clamp_min(0.0)
