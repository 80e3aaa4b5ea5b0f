"""The codec: a table's rows to latent vectors and back.

It holds the stages that stand between a table and the diffusion model: the transform (with its
schema and token layout), the VAE, the latents' standardisation, and the calibration, which corrects
the decoder's outputs after it (:mod:`tabgen.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .calibration import Calibration
from .latent_axes import principal_axes
from .layout import TokenLayout
from .schema import Schema
from .transform import TableTransform
from .vae import VAE
from .whitening import correlated_groups, grouped_whitening

#: Column tokens encoded at once when computing the latents of the whole table.
ENCODE_TOKENS_PER_CHUNK = 2**19
#: The scaling's tensors that files from before each of them lack.
_OPTIONAL_STATE = ("low", "high", "mix", "unmix", "axes", "axis_variances", "rest_variance")


@dataclass
class LatentScaling:
    """Standardisation of the VAE's latents: per dimension, then each group of strongly correlated
    numerical columns' tokens whitened together (:mod:`tabgen.whitening`); and their range in training."""

    mean: Tensor
    std: Tensor
    low: Tensor | None = None
    high: Tensor | None = None
    """The standardised training latents' range per dimension (files from before it have none)."""
    mix: Tensor | None = None
    """The whitening after the per-dimension standardisation (identity outside the groups); ``None``
    where the table has no group, as in files from before it."""
    unmix: Tensor | None = None
    axes: Tensor | None = None
    """The standardised training latents' widest directions (columns), their variances and the mean
    variance off them (:mod:`tabgen.latent_axes`), which shape the sampler's start; ``None`` in a private
    fit's file, which would hold the rows' covariance outside ε, and in files from before them."""
    axis_variances: Tensor | None = None
    rest_variance: Tensor | None = None

    @classmethod
    def fit(cls, latents: Tensor, target_std: float, groups: Sequence[Sequence[int]] = (), axes: bool = True) -> "LatentScaling":
        """The scaling of ``latents``; ``groups`` are lists of latent dimensions whitened together; ``axes``
        measures their widest directions."""
        mean = latents.mean(0)
        # One row has no spread: treat it as unit spread (asked for, torch's std warns and gives NaN).
        spread = latents.std(0) if len(latents) > 1 else torch.ones_like(mean)
        scaling = cls(mean, spread.clamp_min(1e-6) / target_std)
        if groups:
            scaling.mix, scaling.unmix = grouped_whitening(scaling.standardise(latents) / target_std, groups)
        z = scaling.standardise(latents)
        scaling.low, scaling.high = z.min(0).values, z.max(0).values
        if axes:
            scaling.axes, scaling.axis_variances, scaling.rest_variance = principal_axes(z)
        return scaling

    def standardise(self, latents: Tensor) -> Tensor:
        z = (latents - self.mean) / self.std
        return z if self.mix is None else z @ self.mix

    def unstandardise(self, z: Tensor) -> Tensor:
        if self.unmix is not None:
            z = z @ self.unmix
        return z * self.std + self.mean

    def state_tensors(self) -> dict[str, Tensor]:
        optional = {k: getattr(self, k) for k in _OPTIONAL_STATE if getattr(self, k) is not None}
        return {"mean": self.mean, "std": self.std, **optional}

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], device: torch.device) -> "LatentScaling":
        optional = (tensors[k].to(device) if k in tensors else None for k in _OPTIONAL_STATE)
        return cls(tensors["mean"].to(device), tensors["std"].to(device), *optional)


class Codec:
    """Rows ↔ latents: ``encode_means`` of the encoded table, ``decode`` of (unstandardised) latents."""

    def __init__(self, transform: TableTransform, vae: VAE, scaling: LatentScaling | None = None,
                 calibration: Calibration | None = None):
        self.transform = transform
        self.vae = vae
        self.scaling = scaling
        self.calibration = calibration

    @property
    def schema(self) -> Schema:
        return self.transform.schema

    @property
    def layout(self) -> TokenLayout:
        return self.transform.layout_

    @property
    def latent_dim(self) -> int:
        return self.layout.n_tokens * self.vae.d_token

    def fit_scaling(self, latents: Tensor, x_num: Tensor, latent_std: float, whiten_correlation: float | None,
                    axes: bool = True) -> None:
        """The scaling of ``latents`` (of rows whose numerical columns are ``x_num``): standardised to
        ``latent_std``, the tokens of numerical columns correlated at ``whiten_correlation`` whitened
        together, and with their widest directions where ``axes``."""
        groups = [] if whiten_correlation is None else correlated_groups(x_num, whiten_correlation)
        d = self.vae.d_token
        self.scaling = LatentScaling.fit(latents, latent_std, [[j * d + k for j in g for k in range(d)] for g in groups], axes)

    def tokens(self, latents: Tensor) -> Tensor:
        """Flat latent rows as (rows, tokens, d_token)."""
        return latents.reshape(len(latents), self.layout.n_tokens, -1)

    @torch.no_grad()
    def encode_means(self, x_num: Tensor, x_cat: Tensor) -> Tensor:
        """The encoder's mean latents of every row, flattened, in chunks: the transformer's feed-forward
        activations of a whole large table at once would need gigabytes."""
        rows = max(1, ENCODE_TOKENS_PER_CHUNK // self.layout.n_tokens)
        return torch.cat([self.vae.encode(x_num[i : i + rows], x_cat[i : i + rows])[0].flatten(1)
                          for i in range(0, len(x_num), rows)])

    @torch.inference_mode()
    def decode(self, latents: Tensor, generator: torch.Generator | None = None, row_offset: int = 0, *,
               fill: bool = False, calibrated: bool = True) -> pd.DataFrame:
        """Rows from latents (in the VAE's scale). With ``fill``, no cell comes out missing (each head's
        "missing" class, which is its last one, is never chosen). ``calibrated=False`` skips the
        calibration, as rows conditional on given cells do: it moves the model's marginals onto the
        table's, and a conditional sample should not have the table's marginals (on a table where x
        depends on a group, it pulled the mean of x given one group from 2.35 to 2.05, away from the
        table's 2.95)."""
        calibration = self.calibration if calibrated else None
        x_num, logits = self.vae.reconstruct(self.tokens(latents))
        if calibration is not None:
            logits = calibration.shift(logits)
        x_num, logits = self.vae.values(x_num, logits, generator)
        if fill:
            may_be_missing = [c.has_missing for c in self.schema.categorical] + [True] * len(self.layout.gappy)
            logits = [lg[:, :-1] if missing else lg for lg, missing in zip(logits, may_be_missing)]
        x_cat = torch.stack([lg.argmax(-1) for lg in logits], 1) if logits else x_num.new_zeros((len(x_num), 0), dtype=torch.long)
        draws = None
        if self.transform.grouped_columns and generator is not None:
            draws = torch.rand(len(x_num), self.transform.grouped_columns, generator=generator, device=x_num.device)
            draws = draws.cpu().numpy()
        x_num, x_cat = x_num.cpu().numpy(), x_cat.cpu().numpy()
        if calibration is not None:
            x_num = calibration.scores(x_num, x_cat)
        return self.transform.inverse_transform(x_num, x_cat, row_offset, draws)

    @torch.inference_mode()
    def typical_row(self) -> tuple[np.ndarray, np.ndarray]:
        """The decoding of the mean latent, as encoder input: it stands in for the cells not given."""
        x_num, logits = self.vae.decode(self.tokens(self.scaling.mean[None]))
        return x_num[0].cpu().numpy(), np.array([int(lg[0].argmax()) for lg in logits], dtype=np.int64)
