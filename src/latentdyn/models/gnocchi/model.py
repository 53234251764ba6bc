"""GNOCCHI (McCart et al. 2024, arXiv 2407.21195): InfoDiffusion on neural population activity.

A trial's binned spikes become a continuous signal (signal.py: smoothed, Anscombe-transformed,
standardised per unit). An encoder reads the held-in units over the window and gives the trial a
deterministic code; a denoiser conditioned on the diffusion step and on the code predicts the noise
added to the trial's whole signal (held-in and held-out units, window and forward bins: what the
benchmark scores). Loss (README §12, InfoDiffusion): ε-prediction MSE + `recon_weight` · MSE of the
implied clean signal x̂₀ (1/T by default) + `mmd_weight` · MMD(code, N(0, I)); only observed entries count.

Rates out of a diffusion model: the mean, over `rate_samples` DDIM (or DDPM) samples generated from the
trial's own code, of the samples read back as expected counts per bin (`to_rates`). They are the model's
estimate of what the code says about the trial; what the code does not hold (the trial's own noise)
is averaged out, which is what the benchmark's rates should be. `latents/{split}_code` is the code.

Generation (capability `code_generation`): `generate(model, codes)` gives one sampled trial's rates per
code, for trials of conditions never seen (a code moved in code space) and for realism checks.
"""

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from latentdyn.models.gnocchi import diffusion
from latentdyn.models.gnocchi.mmd import mmd
from latentdyn.models.gnocchi.networks import Denoiser, TrialEncoder
from latentdyn.models.gnocchi.signal import to_rates, to_signal, unit_statistics
from latentdyn.models.prediction import predict_in_chunks
from latentdyn.training.contract import StepResult

CODE_LATENT = "code"  # the latent of `predict`'s output that `generate` takes
PREDICT_ROWS = 256  # generated trials per denoiser call in `predict` (rows × rate_samples)
VALID_SEED = 0  # validation draws the same steps and noise every epoch, so its loss is comparable


@dataclass(frozen=True)
class Sampling:
    """How signals are generated (prediction-only settings: they do not change the trained weights)."""

    sampler: str
    steps: int
    eta: float
    rate_samples: int
    seed: int

    @classmethod
    def from_params(cls, params):
        return cls(params["sampler"], params["sample_steps"], params["eta"], params["rate_samples"], params["sample_seed"])


class GNOCCHI(nn.Module):
    graph_safe = False  # diffusers' schedulers step on the host

    def __init__(self, shapes, encoder, denoiser, schedule, smooth_bins, recon_weight, mmd_weight, sampling):
        super().__init__()
        self.shapes = shapes
        self.encoder = encoder
        self.denoiser = denoiser
        self.schedule = schedule
        self.smooth_bins = smooth_bins
        self.recon_weight = recon_weight
        self.mmd_weight = mmd_weight
        self.sampling = sampling
        # the standardisation of the signal, from the training trials (`fit_signal`); saved with the weights
        self.register_buffer("unit_mean", torch.zeros(shapes.n_output))
        self.register_buffer("unit_sd", torch.ones(shapes.n_output))
        self.register_buffer("cumprod", diffusion.alphas_cumprod(schedule, torch.zeros(())), persistent=False)

    def fit_signal(self, target):
        """Set the per-unit standardisation from the training trials' targets (trials × bins × units)."""
        mean, sd = unit_statistics(torch.as_tensor(target), self.smooth_bins)
        self.unit_mean.copy_(mean)
        self.unit_sd.copy_(sd)

    def signal(self, counts):
        """counts trials × bins × units (the first units of the target's) -> signal trials × units × bins."""
        n = counts.shape[-1]
        return to_signal(counts, self.smooth_bins, self.unit_mean[:n], self.unit_sd[:n]).transpose(1, 2)

    def rates(self, signal):
        """signal trials × units × bins -> expected counts per bin, trials × bins × units."""
        return to_rates(signal.transpose(1, 2), self.unit_mean, self.unit_sd)

    def encode(self, encoder_input):
        """The codes (trials × code_dim) of trials' held-in window counts."""
        return self.encoder(self.signal(encoder_input).transpose(1, 2))

    def training_step(self, batch, progress):
        return self._losses(batch, generator=None)

    def validation_step(self, batch, progress):
        generator = torch.Generator(device=batch.target.device).manual_seed(VALID_SEED)
        return self._losses(batch, generator=generator)

    def _losses(self, batch, generator):
        clean = self.signal(batch.target)
        observed = ~torch.isnan(batch.target).transpose(1, 2)
        code = self.encode(batch.encoder_input)
        device = clean.device
        steps = torch.randint(0, self.schedule.steps, (len(clean),), generator=generator, device=device)
        noise = torch.randn(clean.shape, generator=generator, device=device)
        prior = torch.randn(code.shape, generator=generator, device=device)
        noisy = diffusion.add_noise(clean, noise, steps, self.cumprod)
        eps = self.denoiser(noisy, steps, code)
        weight = observed.to(clean.dtype)
        n_observed = weight.sum().clamp_min(1.0)
        terms = {
            "eps_mse": (((eps - noise) ** 2) * weight).sum() / n_observed,
            "recon": (((diffusion.predicted_clean(noisy, eps, steps, self.cumprod) - clean) ** 2) * weight).sum()
            / n_observed,
            "mmd": mmd(code, prior),
        }
        loss = terms["eps_mse"] + self.recon_weight * terms["recon"] + self.mmd_weight * terms["mmd"]
        return StepResult(loss, terms)

    def generate_signal(self, code, noise=None, generator=None):
        """One signal (trials × units × bins) per code, by the configured sampler."""
        shape = (len(code), self.shapes.n_output, self.shapes.n_recon_bins)
        s = self.sampling
        return diffusion.sample(self.denoiser, code, shape, self.schedule, sampler=s.sampler, n_steps=s.steps,
                                eta=s.eta, noise=noise, generator=generator)

    def invert(self, counts, code):
        """The noise x_T from which deterministic DDIM regenerates trials `counts` (their whole target:
        trials × reconstructed bins × units) given `code`."""
        return diffusion.invert(self.denoiser, code, self.signal(counts), self.schedule, n_steps=self.sampling.steps)

    def regenerate(self, noise, code):
        """The signal (trials × units × bins) deterministic DDIM regenerates from inverted `noise` and `code`:
        the trial again with its own code, the trial as another code says with another."""
        return diffusion.regenerate(self.denoiser, code, noise, self.schedule, n_steps=self.sampling.steps)


def build(params, shapes):
    """The model; the prediction-only settings (sampling), which a training job's params leave out, take
    the kind's defaults until `predict` sets them from its own params."""
    params = _with_defaults(params)
    schedule = diffusion.Schedule(params["diffusion_steps"], params["beta_start"], params["beta_end"], params["clip"])
    recon_weight = params["recon_weight"] if params["recon_weight"] is not None else 1.0 / schedule.steps
    encoder = TrialEncoder(shapes.n_input, params["encoder_size"], params["code_dim"])
    denoiser = Denoiser(shapes.n_output, params["channels"], params["levels"], params["code_dim"], params["dropout"])
    return GNOCCHI(shapes, encoder, denoiser, schedule, params["smooth_bins"], recon_weight, params["mmd_weight"],
                   Sampling.from_params(params))


def _with_defaults(params):
    from latentdyn.models.kinds import get_kind

    return get_kind("gnocchi").resolve(params)


def _set_sampling(model, params):
    """Apply prediction-only settings (sampler, steps, η, samples, seed, clip) to a trained model."""
    params = _with_defaults(params)
    model.sampling = Sampling.from_params(params)
    model.schedule = dataclasses.replace(model.schedule, clip=params["clip"])


def train(model, prepared, params, *, run_dir, seed, device, identity):
    """The signal's standardisation from the training trials, then the shared trainer. A resumed run
    restores the standardisation with the weights (buffers), so it continues exactly."""
    from latentdyn.training.trainer import TrainerSettings, fit

    model.fit_signal(prepared.train.target)
    fit(model, prepared, TrainerSettings.from_params(params), run_dir=run_dir, seed=seed, device=device, identity=identity)


def predict(model, prepared, params, device):
    """Rates of every split (the mean of `rate_samples` samples generated from each trial's code) and the
    codes; reproducible from `sample_seed`."""
    _set_sampling(model, params)
    torch.manual_seed(model.sampling.seed)
    rows = max(1, PREDICT_ROWS // model.sampling.rate_samples)
    return predict_in_chunks(model, prepared, device, _rates_and_code, rows)


def _rates_and_code(model, encoder_input, ext_input):
    """One chunk: codes, then `rate_samples` generated trials per code in one batch; `ext_input` unused
    (this kind has no external-input pathway)."""
    code = model.encode(encoder_input)
    draws = model.sampling.rate_samples
    rates = model.rates(model.generate_signal(code.repeat_interleave(draws, dim=0)))
    return {"rates": rates.unflatten(0, (-1, draws)).mean(1), CODE_LATENT: code}


@torch.no_grad()
def generate(model, codes):
    """Rates (trials × reconstructed bins × units) of one trial generated from each code (trials × code_dim)."""
    model.eval()
    return model.rates(model.generate_signal(codes))
