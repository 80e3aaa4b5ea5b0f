"""TabSyn's MLP denoiser F(x; c_noise) with a sinusoidal noise-level embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import DiffusionConfig
from .edm import EDMPrecond
from .processes import process_for


class NoiseEmbedding(nn.Module):
    """Sinusoidal embedding of the scalar c_noise (EDM's PositionalEmbedding)."""

    def __init__(self, num_channels: int, max_positions: int = 10_000):
        super().__init__()
        half = num_channels // 2
        # Computed on the CPU even where the module is built on the meta device (a model file's shape
        # check), where arange and pow would run torch's Python reference kernels: two seconds at first use.
        exponents = torch.arange(half, dtype=torch.float32, device="cpu") / half
        self.register_buffer("freqs", (1 / max_positions) ** exponents)

    def forward(self, c: Tensor) -> Tensor:
        x = c.to(self.freqs.dtype).outer(self.freqs)
        return torch.cat([x.sin(), x.cos()], dim=1)


class MLPDenoiser(nn.Module):
    """proj(x) + embed(c_noise) through a 4-layer SiLU MLP of widths w, 2w, 2w, w (TabSyn's MLPDiffusion).

    TabSyn embeds the noise level at the full width w, a w × w product per row that is a fifth of a
    training step's work for one scalar input; ``noise_channels`` (default: w, as TabSyn) narrows it.
    """

    def __init__(self, d_in: int, width: int, noise_channels: int | None = None):
        super().__init__()
        channels = noise_channels or width
        self.proj = nn.Linear(d_in, width)
        self.noise_embedding = NoiseEmbedding(channels)
        self.time_embed = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, width))
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width),
            nn.SiLU(),
            nn.Linear(2 * width, 2 * width),
            nn.SiLU(),
            nn.Linear(2 * width, width),
            nn.SiLU(),
            nn.Linear(width, d_in),
        )

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        # The sampler gives every row the same σ: embed it once rather than once per row, which was a
        # fifth of a sampling step's work with TabSyn's full-width embedding. Training draws σ per row,
        # and the check would make each step wait for the GPU.
        if not self.training and len(c_noise) > 1 and bool((c_noise == c_noise[0]).all()):
            embedding = self.time_embed(self.noise_embedding(c_noise[:1]))
        else:
            embedding = self.time_embed(self.noise_embedding(c_noise))
        return self.mlp(self.proj(x) + embedding)


def edm_denoiser(latent_dim: int, config: DiffusionConfig, d_token: int) -> EDMPrecond:
    """The preconditioned denoiser D that ``config`` describes, over latent rows of ``latent_dim`` in
    tokens of ``d_token``."""
    return EDMPrecond(MLPDenoiser(latent_dim, config.width, config.noise_channels), config.sigma_data,
                      process_for(config, latent_dim, d_token))
