"""Conditional sampling by inpainting: some coordinates of x are known, the sampler fills in the rest.

At every noise level the known coordinates are replaced by their known value noised to that level
(x_k = y + σ·ε, fresh ε, which is exactly how the forward process noises them), and one Heun step
moves the whole state on (RePaint, Lugmayr et al. 2022, on EDM's sampler). Replacement alone tells the
unknown coordinates too little about the known ones: they only ever see the known values through
noise, and a deterministic step never revisits a choice made when that noise was large. RePaint's
resampling fixes this: after a step from σ to σ', noise the state back to σ and step again, so the
unknown part can move toward agreement with the known part. Resampling is spent only in a band of
noise levels: above it the state is nearly pure noise, and below it the row's modes are already chosen
(resampling there changed nothing in our measurements; see docs/conditional.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .edm import Denoiser
from .sampler import heun_step


@torch.inference_mode()
def heun_inpaint(
    D: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    known: Tensor,
    mask: Tensor,
    *,
    resamples: int = 0,
    resample_band: tuple[float, float] = (0.0, math.inf),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample x from the denoiser's distribution given x[mask] = known[mask].

    ``mask`` (bool) broadcasts against ``noise`` (rows, dims): one mask for all rows or one per row.
    Each step from σ with ``resample_band[0] <= σ <= resample_band[1]`` is taken ``1 + resamples``
    times, noising the state back from σ' to σ in between. Returns x with the known part exactly
    ``known``.
    """

    def randn() -> Tensor:
        return torch.randn(noise.shape, generator=generator, device=noise.device, dtype=noise.dtype)

    sigmas = sigmas.tolist()
    low, high = resample_band
    x = noise * sigmas[0]
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        repeats = resamples if low <= sigma <= high and sigma_next > 0 else 0
        for r in range(repeats + 1):
            x = torch.where(mask, known + sigma * randn(), x)
            x = heun_step(D, x, sigma, sigma_next)
            if r < repeats:  # back to σ: the forward process from σ' adds variance σ² − σ'²
                x = x + math.sqrt(sigma**2 - sigma_next**2) * randn()
    return torch.where(mask, known, x)
