"""Which noise levels (``sigma_schedule``) apart from how to step between them (``heun_step``)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

#: D(x; σ): the clean data's estimate from x at noise levels σ (one per row).
Denoiser = Callable[[Tensor, Tensor], Tensor]


def sigma_schedule(num_steps: int, sigma_min: float, sigma_max: float, rho: float, device: torch.device | str = "cpu") -> Tensor:
    """σ_i = (σmax^{1/ρ} + i/(N−1)·(σmin^{1/ρ} − σmax^{1/ρ}))^ρ for i < N, then σ_N = 0."""
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    sigmas = (sigma_max ** (1 / rho) + i / max(num_steps - 1, 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def heun_step(D: Denoiser, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
    """One step of dx/dσ = (x − D(x; σ))/σ: Euler, then the trapezoid correction unless σ_next = 0."""
    s = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    d = (x - D(x, s)) / sigma
    x_next = x + (sigma_next - sigma) * d
    if sigma_next > 0:
        s_next = torch.full_like(s, sigma_next)
        d_next = (x_next - D(x_next, s_next)) / sigma_next
        x_next = x + (sigma_next - sigma) * (0.5 * d + 0.5 * d_next)
    return x_next


@torch.inference_mode()
def heun_sample(D: Denoiser, noise: Tensor, sigmas: Tensor) -> Tensor:
    """Deterministic EDM sampling from x = σ_0·noise down the given schedule."""
    sigmas = sigmas.tolist()
    x = noise * sigmas[0]
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x = heun_step(D, x, sigma, sigma_next)
    return x
