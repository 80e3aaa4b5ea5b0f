"""The directions of largest spread of the standardised latents, for the sampler's prior.

Each latent dimension is standardised to unit spread, but the dimensions are not independent: on
``default`` the six monthly bills share one direction of variance 32 (of 104 dimensions; adult's widest
is 8.5). A sampler that starts at σ_max from N(0, σ_max²·I) treats the data's part of the noised latents
as negligible; along such a direction it is not, unless σ_max is far above √32. Knowing the few widest
directions lets the sampler start lower, from N(0, σ_max²·I + Σ) (:mod:`tabgen.diffusion.prior`).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Directions kept: far more than the shared tables' wide ones (their widest 8.5–32, their fifth 3.7–5).
PRIOR_AXES = 32
#: Rounds of subspace iteration; the widest directions, far from the 33rd in variance, settle in a few.
ITERATIONS = 8


def principal_axes(z: Tensor, k: int = PRIOR_AXES) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` (or fewer, as the dimensions allow) orthonormal directions of largest variance of the
    rows ``z`` (centred), as columns; their variances, widest first; and the mean variance off them.
    Subspace iteration from a fixed start: no eigendecomposition of the whole covariance (thousands of
    dimensions on wide tables), no copy of ``z`` (products in its float32, only k × k ones in float64),
    and no draw from torch's random stream, so that the fit's later draws do not move."""
    rows, dims = z.shape
    k = min(k, dims, max(rows - 1, 1))
    z = z.float()
    start = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(dims, k, generator=start).to(z.device))[0]
    for _ in range(ITERATIONS):
        q = torch.linalg.qr(z.T @ (z @ q))[0]
    projected = (z @ q).double()
    variances, rotation = torch.linalg.eigh(projected.T @ projected / max(rows - 1, 1))
    variances = variances.flip(0).clamp_min(0)
    total = z.var(0).double().sum() if rows > 1 else variances.new_tensor(0.0)
    rest = ((total - variances.sum()) / max(dims - k, 1)).clamp_min(0)
    return q @ rotation.flip(1).float(), variances.float(), rest.float()
