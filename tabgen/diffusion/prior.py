"""The sampler's start: the noised latents at the first noise level, with the data's spread in them.

At noise level σ the standardised latents are y + σ·n, of covariance Σ + σ²·I. EDM starts from
N(0, σ²·I), which is right only where σ² dwarfs Σ's widest variance: EDM's σ_max of 80 does, against
at most a few dozen on the shared tables. Given Σ's widest directions (:mod:`tabgen.latent_axes`),
the start is drawn from N(0, σ²·I + Σ), with Σ taken as a multiple of the identity off those
directions. At EDM's 80 this changes next to nothing; it is what makes a lower start right: on
default, whose bills share a direction of variance 32, 14 levels from 10 without it lost 0.024 of C2ST
against 20 from 80, and with it scored level (docs/speed.md, "The sampler's start").
"""

from __future__ import annotations

import math

from torch import Tensor


def prior_noise(noise: Tensor, sigma: float, axes: Tensor, variances: Tensor, rest: float) -> Tensor:
    """Standard normal ``noise`` made into ε with σ·ε ~ N(0, σ²·I + Σ), where Σ has ``variances`` along
    ``axes`` (orthonormal columns) and ``rest`` off them."""
    off = math.sqrt(1 + rest / sigma**2)
    on = (1 + variances / sigma**2).sqrt()
    return off * noise + ((noise @ axes) * (on - off)) @ axes.T
