"""The diffusion process: diffusers' schedulers for the noise schedule, DDPM and DDIM sampling and DDIM
inversion (README §12). diffusers clamps the implied clean sample x̂₀ to [-1, 1] by default, which would
cut a standardised signal; here the clamp is `clip` (a few s.d. of the standardised signal) or none.
Why clamp at all: a denoiser trained on a few hundred trials predicts ε coarsely at large t, where
x̂₀ = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t) multiplies its error by up to 1/sqrt(ᾱ_T); unclamped, DDIM samples
of the demo-sized model came out with s.d. 7 to 11 instead of 1, and with a clamp at 3 s.d. with about 2.

Sampling steps every trial of a batch at the same diffusion step, so a batch of any size is one
denoiser call per step (the throughput benchmark's unit); randomness comes from torch's generator
`generator` (None: the global one), so a prediction is reproducible from its seed.
"""

import dataclasses
from dataclasses import dataclass

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler, DDPMScheduler


@dataclass(frozen=True)
class Schedule:
    """The forward process: `steps` diffusion steps, β linear from `beta_start` to `beta_end`; samplers
    clamp x̂₀ to ±`clip` (None: no clamp)."""

    steps: int
    beta_start: float
    beta_end: float
    clip: float | None = None

    def settings(self):
        clip = {"clip_sample": False} if self.clip is None else {"clip_sample": True, "clip_sample_range": self.clip}
        return dict(num_train_timesteps=self.steps, beta_start=self.beta_start, beta_end=self.beta_end,
                    beta_schedule="linear", prediction_type="epsilon", **clip)

    def ddpm(self):
        return DDPMScheduler(**self.settings())

    def ddim(self):
        return DDIMScheduler(**self.settings(), set_alpha_to_one=True)

    def ddim_inverse(self):
        return DDIMInverseScheduler(**self.settings(), set_alpha_to_one=True)


def alphas_cumprod(schedule, like):
    """ᾱ_t for every step t, on `like`'s device and dtype."""
    return schedule.ddpm().alphas_cumprod.to(device=like.device, dtype=like.dtype)


def add_noise(clean, noise, steps, cumprod):
    """x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε, per trial's step (the forward process's marginal)."""
    a = cumprod[steps].view(-1, *([1] * (clean.dim() - 1)))
    return a.sqrt() * clean + (1 - a).sqrt() * noise


def predicted_clean(noisy, eps, steps, cumprod):
    """x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t): the clean signal the ε-prediction implies."""
    a = cumprod[steps].view(-1, *([1] * (noisy.dim() - 1)))
    return (noisy - (1 - a).sqrt() * eps) / a.sqrt()


@torch.no_grad()
def sample(denoiser, code, shape, schedule, *, sampler="ddim", n_steps=50, eta=0.0, noise=None, generator=None):
    """Signals trials × units × bins generated from `code` (trials × code_dim): from `noise` (x_T; drawn
    when None) down `n_steps` evenly spaced steps of DDIM (η = `eta`; 0 = deterministic) or DDPM."""
    scheduler = schedule.ddim() if sampler == "ddim" else schedule.ddpm()
    scheduler.set_timesteps(n_steps, device=code.device)
    x = noise if noise is not None else torch.randn(shape, generator=generator, device=code.device)
    for t in scheduler.timesteps:
        eps = denoiser(x, t.expand(len(x)), code)
        extra = {"eta": eta} if sampler == "ddim" else {}
        x = scheduler.step(eps, t, x, generator=generator, **extra).prev_sample
    return x


@torch.no_grad()
def invert(denoiser, code, clean, schedule, *, n_steps=50):
    """Deterministic DDIM inversion: the x_T from which DDIM (η = 0, `n_steps`, no clamp) regenerates
    `clean` given `code` (`regenerate`); regenerating it with another code changes the trial as that code
    says. Neither direction clamps x̂₀: what a clamp cuts is lost, so a trial beyond ±clip could not come back."""
    scheduler = dataclasses.replace(schedule, clip=None).ddim_inverse()
    scheduler.set_timesteps(n_steps, device=code.device)
    x = clean
    for t in scheduler.timesteps:
        x = scheduler.step(denoiser(x, t.expand(len(x)), code), t, x).prev_sample
    return x


def regenerate(denoiser, code, noise, schedule, *, n_steps=50):
    """The signal deterministic DDIM (η = 0, no clamp) generates from inverted `noise` given `code`."""
    return sample(denoiser, code, noise.shape, dataclasses.replace(schedule, clip=None), n_steps=n_steps, noise=noise)
