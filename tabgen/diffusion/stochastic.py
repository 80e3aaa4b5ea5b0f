"""The stochastic samplers, for every process in y = x/s(t) and σ(t), where each process's ODE is EDM's
dy/dσ = (y − D(y; σ))/σ and its forward noising is y_σ = y₀ + σ·ε.

- :func:`edm_stochastic_sample`: EDM's Algorithm 2 (Karras et al. 2022). Each step within
  [S_tmin, S_tmax] first raises the noise from σ to σ̂ = (1 + γ)·σ, γ = min(S_churn/N, √2 − 1), by adding
  fresh noise of variance σ̂² − σ² (scaled by S_noise), then takes Heun's step from σ̂. S_churn = 0 is
  Algorithm 1.
- :func:`ancestral_step`: DDPM's ancestral sampling (Ho et al. 2020). From y at σ, the clean data
  estimated as x̂₀ = D(y; σ), the next state is drawn from the forward process's posterior
  q(y_σ' | y_σ, x̂₀) = N(x̂₀ + (σ'/σ)²·(y − x̂₀), σ'²·(1 − (σ'/σ)²)). For DDPM's own chain in its 1,000
  steps this is x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε_θ)/√α_t + σ_t·z with σ_t² = β̃_t, and on strided steps it
  is DDIM with η = 1.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .sampler import Denoiser, heun_step


def churn_gamma(sigma: float, churn: float, steps: int, tmin: float, tmax: float) -> float:
    """γ_i of EDM's Algorithm 2: the share by which step i raises its noise level."""
    return min(churn / steps, math.sqrt(2) - 1) if tmin <= sigma <= tmax else 0.0


def edm_stochastic_sample(D: Denoiser, y: Tensor, sigmas: Sequence[float], churn: float, tmin: float = 0.0,
                          tmax: float = math.inf, noise_scale: float = 1.0,
                          generator: torch.Generator | None = None) -> Tensor:
    """EDM's stochastic sampler from ``y`` at ``sigmas[0]`` down ``sigmas`` (the last may be 0)."""
    steps = len(sigmas) - 1
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        gamma = churn_gamma(sigma, churn, steps, tmin, tmax)
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            y = y + math.sqrt(sigma_hat**2 - sigma**2) * noise_scale * standard_normal(y, generator)
        y = heun_step(D, y, sigma_hat, sigma_next)
    return y


def ancestral_step(D: Denoiser, y: Tensor, sigma: float, sigma_next: float, noise: Tensor) -> Tensor:
    """One ancestral step from ``y`` at σ to σ' with standard normal ``noise``: one call of D."""
    clean = D(y, torch.full((y.shape[0],), sigma, dtype=y.dtype, device=y.device))
    if sigma_next <= 0:
        return clean
    kept = (sigma_next / sigma) ** 2
    return clean + kept * (y - clean) + sigma_next * math.sqrt(1 - kept) * noise


def standard_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Noise shaped as ``like``, from ``generator`` (torch's global one if None)."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
