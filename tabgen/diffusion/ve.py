"""The variance-exploding process (Song et al. 2021) in EDM's form (Karras et al. 2022, Table 1).

σ(t) = √t,  s(t) = 1,  sampler times t_i = σ_max²·(σ_min²/σ_max²)^{i/(N−1)}
c_skip = 1,  c_out = σ,  c_in = 1,  c_noise = ln(½σ),  λ = 1/σ²,  ln σ ~ U(ln σ_min, ln σ_max)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..config import SamplerConfig
from .process import Process


class VEProcess(Process):
    name = "ve"

    def __init__(self, sigma_min: float = 0.02, sigma_max: float = 100.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def sigma(self, t: float) -> float:
        return math.sqrt(t)

    def sigma_dot(self, t: float) -> float:
        return 0.5 / math.sqrt(t)

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        n = max(num_steps - 1, 1)
        ratio = self.sigma_min**2 / self.sigma_max**2
        return [self.sigma_max**2 * ratio ** (i / n) for i in range(num_steps)] + [0.0]

    def c_skip(self, sigma: Tensor) -> Tensor:
        return torch.ones_like(sigma)

    def c_out(self, sigma: Tensor) -> Tensor:
        return sigma

    def c_in(self, sigma: Tensor) -> Tensor:
        return torch.ones_like(sigma)

    def c_noise(self, sigma: Tensor) -> Tensor:
        return (0.5 * sigma).log()

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        low, high = math.log(self.sigma_min), math.log(self.sigma_max)
        return (low + (high - low) * torch.rand(n, device=device)).exp()
