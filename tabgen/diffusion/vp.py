"""The variance-preserving process (Song et al. 2021) in EDM's form (Karras et al. 2022, Table 1).

σ(t) = √(e^{½β_d t² + β_min t} − 1),  s(t) = 1/√(e^{½β_d t² + β_min t}),  t ∈ [ε_s, 1]
c_skip = 1,  c_out = −σ,  c_in = 1/√(σ² + 1),  c_noise = (M − 1)·σ⁻¹(σ),  λ = 1/σ²,  t ~ U(ε_t, 1)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..config import SamplerConfig
from .process import Process


class EpsilonPrediction(Process):
    """c_skip = 1, c_out = −σ, c_in = 1/√(σ² + 1): the network predicts the noise, as in DDPM and VP."""

    def c_skip(self, sigma: Tensor) -> Tensor:
        return torch.ones_like(sigma)

    def c_out(self, sigma: Tensor) -> Tensor:
        return -sigma

    def c_in(self, sigma: Tensor) -> Tensor:
        return 1 / (sigma**2 + 1).sqrt()


class VPProcess(EpsilonPrediction):
    name = "vp"

    def __init__(self, beta_d: float = 19.9, beta_min: float = 0.1, epsilon_s: float = 1e-3, epsilon_t: float = 1e-5,
                 M: int = 1000):
        self.beta_d, self.beta_min, self.epsilon_s, self.epsilon_t, self.M = beta_d, beta_min, epsilon_s, epsilon_t, M

    def _exponent(self, t: float) -> float:
        return 0.5 * self.beta_d * t * t + self.beta_min * t

    def sigma(self, t: float) -> float:
        return math.sqrt(math.expm1(self._exponent(t)))

    def sigma_dot(self, t: float) -> float:
        return 0.5 * (self.beta_d * t + self.beta_min) * math.exp(self._exponent(t)) / self.sigma(t)

    def scale(self, t: float) -> float:
        return math.exp(-0.5 * self._exponent(t))

    def scale_dot(self, t: float) -> float:
        return -0.5 * (self.beta_d * t + self.beta_min) * self.scale(t)

    def sigma_inv(self, sigma: Tensor) -> Tensor:
        """The time t at which σ(t) = σ."""
        return ((self.beta_min**2 + 2 * self.beta_d * (sigma**2).log1p()).sqrt() - self.beta_min) / self.beta_d

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        """t_i = 1 + i/(N − 1)·(ε_s − 1), then 0."""
        n = max(num_steps - 1, 1)
        return [1 + i / n * (self.epsilon_s - 1) for i in range(num_steps)] + [0.0]

    def c_noise(self, sigma: Tensor) -> Tensor:
        return (self.M - 1) * self.sigma_inv(sigma)

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        t = self.epsilon_t + (1 - self.epsilon_t) * torch.rand(n, device=device)
        return torch.expm1(0.5 * self.beta_d * t**2 + self.beta_min * t).sqrt()
