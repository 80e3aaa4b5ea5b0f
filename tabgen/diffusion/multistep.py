"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): the probability-flow ODE at one
denoiser call per step, second order by reusing the previous step's estimate of the clean data.

In y = x/s(t) every process's ODE is EDM's dy/dσ = (y − D(y; σ))/σ. Holding D fixed over a step,
its exact solution from σ to σ' is y' = (σ'/σ)·y + (1 − σ'/σ)·D; the second-order method replaces
D with its extrapolation along λ = −ln σ from the last two estimates. Heun's method spends two calls
a step for the same order.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .sampler import Denoiser


def dpm_solver_2m(D: Denoiser, y: Tensor, sigmas: Sequence[float]) -> Tensor:
    """Integrate from ``y`` at ``sigmas[0]`` down ``sigmas`` (the last may be 0): one call of D a step."""
    previous: Tensor | None = None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        denoised = D(y, torch.full((y.shape[0],), sigma, dtype=y.dtype, device=y.device))
        estimate = denoised
        if previous is not None and sigma_next > 0:
            # r = h_{i−1}/h_i in λ = −ln σ; D extrapolated half a step ahead.
            r = math.log(sigmas[i - 1] / sigma) / math.log(sigma / sigma_next)
            estimate = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * previous
        ratio = sigma_next / sigma
        y = ratio * y + (1 - ratio) * estimate
        previous = denoised
    return y
