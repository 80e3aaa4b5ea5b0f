"""DDPM (Ho et al. 2020) in EDM's form, sampled with DDIM's deterministic strided steps (Song et al. 2021).

β_t linear from 10⁻⁴ to 0.02 over T = 1,000 steps, α_t = 1 − β_t, ᾱ_t = ∏_{s≤t} α_s, and
x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, which is EDM's s·(x₀ + σ·ε) with s_t = √ᾱ_t and σ_t = √((1 − ᾱ_t)/ᾱ_t).
The loss ‖ε − ε_θ(x_t, t)‖² is EDM's with c_skip = 1, c_out = −σ, c_in = 1/√(σ² + 1) (the network
sees x_t itself), c_noise = t and λ = 1/σ²; training draws t uniformly. A sampler time is an index t
(−1: the clean data), and a DDIM step from t to t' is x_{t'} = √ᾱ_{t'}·x̂₀ + √(1 − ᾱ_{t'})·ε̂, with x̂₀
the denoiser's estimate and ε̂ the noise it implies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import SamplerConfig
from .process import Denoiser
from .vp import EpsilonPrediction


class DDPMProcess(EpsilonPrediction):
    name = "ddpm"

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, T: int = 1000):
        self.T = T
        # On the CPU even where the denoiser is built on the meta device (a model file's shape check).
        alpha_bar = torch.cumprod(1 - torch.linspace(beta_start, beta_end, T, dtype=torch.float64, device="cpu"), 0)
        self.sigmas = ((1 - alpha_bar) / alpha_bar).sqrt()
        self._scales = alpha_bar.sqrt().tolist()
        self._sigma_list = self.sigmas.tolist()

    def sigma(self, t: float) -> float:
        return 0.0 if t < 0 else self._sigma_list[round(t)]

    def scale(self, t: float) -> float:
        return 1.0 if t < 0 else self._scales[round(t)]

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        """``num_steps`` indices from T − 1 down to 0, evenly strided, then −1 (the data)."""
        n = max(num_steps - 1, 1)
        return [float(round((self.T - 1) * (1 - i / n))) for i in range(num_steps)] + [-1.0]

    def c_noise(self, sigma: Tensor) -> Tensor:
        """The index t whose σ_t is nearest σ."""
        table = self.sigmas.to(sigma.device, sigma.dtype)
        upper = torch.searchsorted(table, sigma.contiguous()).clamp(1, self.T - 1)
        nearer_lower = (sigma - table[upper - 1]).abs() <= (table[upper] - sigma).abs()
        return (upper - nearer_lower.long()).to(sigma.dtype)

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        return self.sigmas.to(device, torch.float32)[torch.randint(self.T, (n,), device=device)]

    def step(self, D: Denoiser, x: Tensor, t: float, t_next: float) -> Tensor:
        """DDIM's deterministic step (η = 0): the estimate of x₀ re-noised to t_next with the noise it implies."""
        sigma, s = self.sigma(t), self.scale(t)
        y = x / s
        clean = D(y, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))
        if t_next < 0:
            return clean
        return self.scale(t_next) * (clean + self.sigma(t_next) * (y - clean) / sigma)
