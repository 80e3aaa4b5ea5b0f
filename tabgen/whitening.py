"""Whitening of strongly correlated numerical columns' latents, together.

Columns that move together (a bill each month) give latents that lie near a thin subspace: on
``default`` 37 of 104 standardised latent dimensions had a correlation eigenvalue under 0.01. The
denoiser, trained with one noise level for every direction, learns such a direction last, and its rows
break the ties between the columns. Whitening each group of such columns' tokens (ZCA, so that each
dimension stays nearest to itself) gives every direction unit spread; whitening every dimension at once
cost adult's C2ST, whose columns form no such group. Whitening in groups is an option
(``DiffusionConfig.whiten_correlation``), off by default: it helped default and cost shoppers and magic
(docs/rules.md, "Whitening in groups").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: Eigenvalues below this share of a group's largest are lifted to it: no direction is amplified more than
#: 10-fold against the group's widest. At 10⁻⁴ (100-fold) a default fit's validation loss was lowest a
#: third of the way through training and its rows scored C2ST 0.116 against 0.314 unwhitened: the
#: denoiser learned the training rows' detail along the thinnest directions (docs/rules.md).
EIGENVALUE_FLOOR = 1e-2


def correlated_groups(x_num: Tensor, threshold: float) -> list[list[int]]:
    """Groups (of two or more) of numerical columns linked by |Pearson correlation| ≥ ``threshold``
    between their normal scores, directly or through a chain."""
    if x_num.shape[1] < 2 or len(x_num) < 3:
        return []
    corr = torch.corrcoef(x_num.T.double()).abs().nan_to_num()
    parent = list(range(len(corr)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in (corr.triu(1) >= threshold).nonzero().tolist():
        parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(corr)):
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def zca_whitening(z: Tensor, floor: float = EIGENVALUE_FLOOR) -> tuple[Tensor, Tensor]:
    """The ZCA map W of rows ``z`` (``z @ W`` has identity covariance, up to ``floor``) and its inverse."""
    x = (z - z.mean(0)).double()
    eigenvalues, vectors = torch.linalg.eigh(x.T @ x / max(len(x) - 1, 1))
    eigenvalues = eigenvalues.clamp_min(floor * float(eigenvalues.max().clamp_min(1e-12)))
    scale = eigenvalues.rsqrt()
    return (vectors * scale) @ vectors.T, (vectors / scale) @ vectors.T


def grouped_whitening(z: Tensor, groups: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """A map (and its inverse) of standardised latents ``z`` that whitens each group of dimensions
    together and leaves every other dimension as it is."""
    mix = torch.eye(z.shape[1], dtype=torch.float64, device=z.device)
    unmix = mix.clone()
    for dims in groups:
        block = torch.tensor(dims, device=z.device)
        w, w_inv = zca_whitening(z[:, block])
        mix[block[:, None], block[None]] = w
        unmix[block[:, None], block[None]] = w_inv
    return mix.to(z.dtype), unmix.to(z.dtype)
