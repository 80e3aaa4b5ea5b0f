"""EDM's preconditioning and loss (Karras et al. 2022, Table 1), one equation per function.

D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ))
loss    = E[λ(σ)·‖D(x + n; σ) − x‖²],  λ(σ) = (σ² + σ_d²)/(σ·σ_d)²,  ln σ ~ N(P_mean, P_std²)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import DiffusionConfig, SamplerConfig
from .process import Denoiser, Process
from .sampler import heun_step, sigma_schedule


def c_skip(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()


def c_in(sigma: Tensor, sigma_data: float) -> Tensor:
    return 1 / (sigma**2 + sigma_data**2).sqrt()


def c_noise(sigma: Tensor) -> Tensor:
    return sigma.log() / 4


def loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """λ(σ): makes the loss of every noise level start at 1 for the zero network."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigma(n: int, P_mean: float, P_std: float, device: torch.device | str = "cpu") -> Tensor:
    """Training noise levels, ln σ ~ N(P_mean, P_std²)."""
    return (torch.randn(n, device=device) * P_std + P_mean).exp()


class EDMProcess(Process):
    """EDM's own process: σ(t) = t, s(t) = 1, ln σ ~ N(P_mean, P_std²) in training, and the ρ-spaced
    σ schedule of :class:`~tabgen.config.SamplerConfig` in sampling."""

    name = "edm"

    def __init__(self, sigma_data: float = 0.5, P_mean: float = -1.2, P_std: float = 1.2):
        self.sigma_data, self.P_mean, self.P_std = sigma_data, P_mean, P_std

    @classmethod
    def from_config(cls, config: DiffusionConfig) -> "EDMProcess":
        return cls(config.sigma_data, config.P_mean, config.P_std)

    def sigma(self, t: float) -> float:
        return t

    def sigma_dot(self, t: float) -> float:
        return 1.0

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        return sigma_schedule(num_steps, config.sigma_min, config.sigma_max, config.rho).tolist()

    def c_skip(self, sigma: Tensor) -> Tensor:
        return c_skip(sigma, self.sigma_data)

    def c_out(self, sigma: Tensor) -> Tensor:
        return c_out(sigma, self.sigma_data)

    def c_in(self, sigma: Tensor) -> Tensor:
        return c_in(sigma, self.sigma_data)

    def c_noise(self, sigma: Tensor) -> Tensor:
        return c_noise(sigma)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        return loss_weight(sigma, self.sigma_data)

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        return sample_sigma(n, self.P_mean, self.P_std, device)

    def loss(self, D: Denoiser, x: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
        return edm_loss(D, x, sigma, noise, self.sigma_data)

    # In σ itself, as EDM's sampler: the same numbers as before processes were selectable.
    def noised(self, y: Tensor, t: float, noise: Tensor) -> Tensor:
        return y + t * noise

    def renoised(self, x: Tensor, t_low: float, t_high: float, noise: Tensor) -> Tensor:
        return x + math.sqrt(t_high**2 - t_low**2) * noise

    def step(self, D: Denoiser, x: Tensor, t: float, t_next: float) -> Tensor:
        return heun_step(D, x, t, t_next)

    def clean(self, x: Tensor, t: float) -> Tensor:
        return x


class EDMPrecond(nn.Module):
    """Wraps a raw network F into the denoiser D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise), with the
    coefficients of ``process`` (EDM's by default). The file keeps the process's name, and the state of a
    process that learns from the latents (the graph process's graph) with the weights."""

    def __init__(self, net: nn.Module, sigma_data: float, process: Process | None = None):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data
        self.process = process or EDMProcess(sigma_data)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self.process.denoise(self.net, x, sigma)


def bounded_denoiser(D: Denoiser, low: Tensor, high: Tensor) -> Denoiser:
    """D with its estimate of the clean x held within [low, high] per dimension.

    The ideal denoiser's E[x₀ | x] lies within the training latents' range, so holding D there only
    removes a trained network's extrapolation. A width-256 denoiser trained 24,000 steps on adult's
    width-12 tokens extrapolated with a slope so steep that Heun's steps below σ = 1 fed it back
    into itself: latents reached 10¹⁶ and 91 % of the rows decoded garbage (DDPM clips its images
    for the same reason).
    """
    return lambda x, sigma: torch.maximum(torch.minimum(D(x, sigma), high), low)


def edm_loss(D: Denoiser, x: Tensor, sigma: Tensor, noise: Tensor, sigma_data: float) -> Tensor:
    """λ(σ)-weighted squared error of denoising x + σ·noise, averaged over rows and dimensions.

    σ and the noise are arguments so that validation can hold them fixed; training draws them with
    :func:`sample_sigma` and ``torch.randn_like``.
    """
    sigma = sigma.reshape(-1, 1)
    weight = loss_weight(sigma, sigma_data)
    return (weight * (D(x + sigma * noise, sigma) - x) ** 2).mean()
