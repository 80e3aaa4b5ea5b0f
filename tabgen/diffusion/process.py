"""A forward process in EDM's unified form (Karras et al. 2022, §2 and Table 1): x_t = s(t)·(x₀ + σ(t)·ε).

Each process names its noise schedule σ(t) and scaling s(t), the preconditioning of its denoiser
D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise), its loss weight λ(σ), the noise levels it trains on
and the times its sampler visits. The sampler integrates the probability-flow ODE

    dx/dt = (σ̇/σ + ṡ/s)·x − (σ̇·s/σ)·D(x/s; σ)

with Heun's method (EDM's Algorithm 1), which for σ(t) = t, s(t) = 1 is EDM's dx/dσ = (x − D)/σ.
The same D is trained by every process, so conditional sampling, rebalancing and imputation work
with each: given coordinates are noised as the forward process noises them, s(t)·(y + σ(t)·ε).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import SamplerConfig
from .multistep import dpm_solver_2m
from .sampler import Denoiser
from .stochastic import ancestral_step


class Process:
    """The interface of a forward process; subclasses define the schedule and the preconditioning."""

    name = ""
    gaussian_prior = True
    """Whether the prior is ``noise``·σ·s at the first time, so that the sampler may shape the noise
    with the data's spread (:mod:`tabgen.diffusion.prior`)."""

    # ----------------------------------------------------------------- schedule
    def sigma(self, t: float) -> float:
        raise NotImplementedError

    def sigma_dot(self, t: float) -> float:
        raise NotImplementedError

    def scale(self, t: float) -> float:
        return 1.0

    def scale_dot(self, t: float) -> float:
        return 0.0

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        """The sampler's ``num_steps`` times, from the prior's, then t = 0 (σ = 0)."""
        raise NotImplementedError

    def fit(self, latents: Tensor) -> None:
        """Learn what the process needs of the training latents (standardised): nothing, unless overridden."""

    # ---------------------------------------------------------- preconditioning
    def denoise(self, net: nn.Module, x: Tensor, sigma: Tensor) -> Tensor:
        """D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise) with the raw network ``net`` as F."""
        sigma = sigma.reshape(-1, 1).to(x.dtype).expand(x.shape[0], 1)
        F_x = net(self.c_in(sigma) * x, self.c_noise(sigma).flatten())
        return self.c_skip(sigma) * x + self.c_out(sigma) * F_x

    def c_skip(self, sigma: Tensor) -> Tensor:
        raise NotImplementedError

    def c_out(self, sigma: Tensor) -> Tensor:
        raise NotImplementedError

    def c_in(self, sigma: Tensor) -> Tensor:
        raise NotImplementedError

    def c_noise(self, sigma: Tensor) -> Tensor:
        raise NotImplementedError

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """λ(σ) = 1/c_out(σ)²: the zero network's loss is 1 at every noise level."""
        return 1 / self.c_out(sigma) ** 2

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """Noise levels of one training batch."""
        raise NotImplementedError

    def loss(self, D: Denoiser, x: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
        """λ(σ)-weighted squared error of denoising x + σ·noise, averaged over rows and dimensions."""
        sigma = sigma.reshape(-1, 1)
        return (self.loss_weight(sigma) * (D(x + sigma * noise, sigma) - x) ** 2).mean()

    # ------------------------------------------------------------------ sampler
    def prior(self, noise: Tensor, t: float) -> Tensor:
        """x at the first time from ``noise``: N(0, s²σ²) from standard normal noise; the sampler gives it
        noise shaped with the data's spread where it knows it (:mod:`tabgen.diffusion.prior`)."""
        return noise * (self.sigma(t) * self.scale(t))

    def noised(self, y: Tensor, t: float, noise: Tensor) -> Tensor:
        """Clean values ``y`` as the forward process has them at ``t``."""
        return self.scale(t) * (y + self.sigma(t) * noise)

    def renoised(self, x: Tensor, t_low: float, t_high: float, noise: Tensor) -> Tensor:
        """x at ``t_low`` taken back to ``t_high`` by the forward process (RePaint's resampling)."""
        ratio = self.scale(t_high) / self.scale(t_low)
        return ratio * x + self.scale(t_high) * math.sqrt(self.sigma(t_high) ** 2 - self.sigma(t_low) ** 2) * noise

    def step(self, D: Denoiser, x: Tensor, t: float, t_next: float) -> Tensor:
        """One Heun step of the probability-flow ODE from ``t`` to ``t_next`` (Euler where σ(t_next) = 0)."""
        d = self._slope(D, x, t)
        x_next = x + (t_next - t) * d
        if self.sigma(t_next) > 0:
            x_next = x + (t_next - t) * (0.5 * d + 0.5 * self._slope(D, x_next, t_next))
        return x_next

    def ancestral_step(self, D: Denoiser, x: Tensor, t: float, t_next: float, noise: Tensor) -> Tensor:
        """A draw of x at ``t_next`` from the forward process's posterior given x at ``t`` and D's estimate
        of the clean data (:func:`~tabgen.diffusion.stochastic.ancestral_step` in y = x/s)."""
        y = ancestral_step(D, x / self.scale(t), self.sigma(t), self.sigma(t_next), noise)
        return self.scale(t_next) * y

    def dpm_solver_2m(self, D: Denoiser, noise: Tensor, times: list[float]) -> Tensor:
        """DPM-Solver++(2M) down ``times`` from standard normal ``noise``, in y = x/s(t) and σ(t)."""
        sigmas = [self.sigma(t) for t in times]
        return dpm_solver_2m(D, noise * sigmas[0], sigmas)

    def _slope(self, D: Denoiser, x: Tensor, t: float) -> Tensor:
        sigma, s, sigma_dot = self.sigma(t), self.scale(t), self.sigma_dot(t)
        level = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
        return (sigma_dot / sigma + self.scale_dot(t) / s) * x - (sigma_dot * s / sigma) * D(x / s, level)

    def clean(self, x: Tensor, t: float) -> Tensor:
        """The sampler's last state as data: x/s at t = 0."""
        return x / self.scale(t)


@torch.inference_mode()
def ode_sample(D: Denoiser, noise: Tensor, times: list[float], process: Process) -> Tensor:
    """Deterministic sampling from ``process``'s prior down ``times`` (the last one has σ = 0)."""
    x = process.prior(noise, times[0])
    for t, t_next in zip(times[:-1], times[1:]):
        x = process.step(D, x, t, t_next)
    return process.clean(x, times[-1])
